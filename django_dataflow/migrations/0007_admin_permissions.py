# Custom permissions of the admin actions (docs/admin.md). Depends on 0004 until the merge re-points it.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('django_dataflow', '0004_model_registry'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='workflowdefinition',
            options={'ordering': ['name'], 'permissions': [('run_workflowdefinition', 'Can run a workflow definition')], 'verbose_name': 'workflow definition'},
        ),
        migrations.AlterModelOptions(
            name='workflowrun',
            options={'ordering': ['-created_at'], 'permissions': [('rerun_workflowrun', 'Can re-run a failed workflow run'), ('cancel_workflowrun', 'Can cancel a pending workflow run')], 'verbose_name': 'workflow run'},
        ),
    ]
