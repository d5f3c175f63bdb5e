# The HTTP API: bearer tokens (ApiToken) and the ad-hoc run permission on WorkflowRun.
# After 0007 (the admin's permissions) so the chain stays linear; the merger re-points it after 0005.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_dataflow', '0006_admin_permissions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='workflowrun',
            options={'ordering': ['-created_at'], 'permissions': [('rerun_workflowrun', 'Can re-run a failed workflow run'), ('cancel_workflowrun', 'Can cancel a pending workflow run'), ('run_adhoc_workflow', 'Can run ad-hoc workflows (a workflow body) through the HTTP API')], 'verbose_name': 'workflow run'},
        ),
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text="What the token is for, e.g. 'nightly-import'.", max_length=100)),
                ('prefix', models.CharField(editable=False, help_text="The token's first characters, to recognise it.", max_length=16)),
                ('key_hash', models.CharField(editable=False, help_text='SHA-256 (hex).', max_length=64, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('last_used_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('expires_at', models.DateTimeField(blank=True, help_text='Refused after this; empty: never.', null=True)),
                ('revoked_at', models.DateTimeField(blank=True, help_text='Refused from this moment on.', null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='dataflow_api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'API token',
                'ordering': ['-created_at'],
            },
        ),
    ]
