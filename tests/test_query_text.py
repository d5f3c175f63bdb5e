"""Text operators ($contains $icontains $startswith $endswith $like $ilike $regex $iregex) on text
columns and JSON keys: the same answers, case-sensitivity included, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test.utils import override_settings

from django_dataflow import LocalRuntime
from django_dataflow.exceptions import NodeExecutionError, WorkflowValidationError
from shop.models import Customer, Product
from tests.conftest import build, run

pytestmark = pytest.mark.django_db

TEXT_OPS = ("$contains", "$icontains", "$startswith", "$endswith", "$like", "$ilike", "$regex", "$iregex")


def sku_set(spec: dict[str, Any]) -> set[str]:
    """The skus a Product List matches; Count must agree."""
    records = run([("ProductListNode", "n", {"filter": spec, "limit": 1000})])["n"]["records"]
    count = run([("ProductCountNode", "c", {"filter": spec})])["c"]["count"]
    assert count == len(records)
    return {r["sku"] for r in records}


def names(spec: dict[str, Any]) -> set[str]:
    """The names of the customers a filter matches."""
    records = run([("CustomerListNode", "n", {"filter": spec, "limit": 1000})])["n"]["records"]
    return {r["name"] for r in records}


def build_error(spec: Any, node_type: str = "ProductListNode") -> str:
    """The message of the WorkflowValidationError build() raises for a List filter."""
    with pytest.raises(WorkflowValidationError) as info:
        build([(node_type, "n", {"filter": spec})])
    return str(info.value)


@pytest.fixture
def texts() -> None:
    """Products whose names differ by case and whose descriptions hold %, _, \\, * ? [ and NULL."""
    rows = [
        ("A", "Lamp", "50% off"),
        ("B", "lamp", "a_b"),
        ("C", "LAMP post", "axb"),
        ("D", "Desk lamp", None),
        ("E", "x*y", ""),
        ("F", "q?[z]", "back\\slash"),
        ("G", "Shade", "50 off"),
        ("H", "xzzy", "aXb"),
        ("I", "qaz", "100%"),
    ]
    for sku, name, description in rows:
        Product.objects.create(sku=sku, name=name, description=description, price="1.00")


ALL = set("ABCDEFGHI")
NOT_NULL = ALL - {"D"}


@pytest.fixture
def tagged() -> None:
    """Customers whose metadata 'x' differs by case, is JSON null, is missing or is not a string."""
    metadata = {
        "ada": {"x": "Lamp"},
        "bob": {"x": "lamp"},
        "cy": {"x": None},
        "di": {},
        "ed": {"x": "LAMP post", "nest": {"a": {"b": 1}, "c": 2}},
        "gus": {"x": "Lamp shade", "nest": {"a": {"b": 2}}},
    }
    for name, meta in metadata.items():
        Customer.objects.create(name=name, email=f"{name}@x.io", metadata=meta)


# Case sensitivity -----------------------------------------------------------------------------


class TestCaseSensitivity:
    @pytest.mark.parametrize(
        ("op", "pattern", "expected"),
        [
            ("$contains", "Lamp", {"A"}),
            ("$contains", "lamp", {"B", "D"}),
            ("$contains", "LAMP", {"C"}),
            ("$icontains", "lamp", {"A", "B", "C", "D"}),
            ("$icontains", "LaMp", {"A", "B", "C", "D"}),
            ("$startswith", "Lamp", {"A"}),
            ("$startswith", "lamp", {"B"}),
            ("$startswith", "L", {"A", "C"}),
            ("$endswith", "lamp", {"B", "D"}),
            ("$endswith", "Lamp", {"A"}),
            ("$endswith", "POST", set()),
            ("$like", "Lamp", {"A"}),
            ("$like", "lamp", {"B"}),
            ("$like", "%lamp", {"B", "D"}),
            ("$like", "L%", {"A", "C"}),
            ("$ilike", "lamp", {"A", "B"}),
            ("$ilike", "%LAMP%", {"A", "B", "C", "D"}),
            ("$regex", "Lamp", {"A"}),
            ("$regex", "^l", {"B"}),
            ("$regex", "[Ll]amp", {"A", "B", "D"}),
            ("$iregex", "^lamp", {"A", "B", "C"}),
            ("$iregex", "LAMP$", {"A", "B", "D"}),
        ],
    )
    def test_on_text_column(self, texts: None, op: str, pattern: str, expected: set[str]) -> None:
        assert sku_set({"name": {op: pattern}}) == expected

    @pytest.mark.parametrize(
        ("op", "pattern", "expected"),
        [
            ("$contains", "Lamp", {"ada", "gus"}),
            ("$contains", "lamp", {"bob"}),
            ("$icontains", "lamp", {"ada", "bob", "ed", "gus"}),
            ("$startswith", "Lamp", {"ada", "gus"}),
            ("$startswith", "lamp", {"bob"}),
            ("$endswith", "amp", {"ada", "bob"}),
            ("$endswith", "AMP", set()),
            ("$like", "Lamp%", {"ada", "gus"}),
            ("$like", "lamp", {"bob"}),
            ("$ilike", "lamp", {"ada", "bob"}),
            ("$ilike", "lamp%", {"ada", "bob", "ed", "gus"}),
            ("$regex", "^Lamp$", {"ada"}),
            ("$regex", "amp", {"ada", "bob", "gus"}),
            ("$iregex", "^lamp$", {"ada", "bob"}),
        ],
    )
    def test_on_json_key(self, tagged: None, op: str, pattern: str, expected: set[str]) -> None:
        assert names({"metadata.x": {op: pattern}}) == expected

    @pytest.mark.parametrize("op", TEXT_OPS)
    def test_not_on_json_key_matches_missing_and_json_null(self, tagged: None, op: str) -> None:
        matched = names({"metadata.x": {op: "Lamp"}})
        assert "cy" not in matched and "di" not in matched
        everyone = {"ada", "bob", "cy", "di", "ed", "gus"}
        assert names({"metadata.x": {"$not": {op: "Lamp"}}}) == everyone - matched
        assert names({"$nor": [{"metadata.x": {op: "Lamp"}}]}) == everyone - matched

    def test_case_insensitive_variants_agree_with_python(self, texts: None) -> None:
        rows = dict(Product.objects.values_list("sku", "name"))
        for needle in ("lamp", "LAMP", "Lamp", "amp p", "X*Y"):
            expected = {sku for sku, name in rows.items() if needle.lower() in name.lower()}
            assert sku_set({"name": {"$icontains": needle}}) == expected, needle
            assert sku_set({"name": {"$ilike": f"%{needle}%"}}) == expected, needle

    def test_count_and_read_use_the_same_translation(self, texts: None) -> None:
        spec = {"name": {"$contains": "Lamp"}}
        assert run([("ProductCountNode", "c", {"filter": spec})])["c"] == {"count": 1}
        assert run([("ProductReadNode", "r", {"conditions": spec})])["r"]["sku"] == "A"


# $like wildcards and escapes ---------------------------------------------------------------------


class TestLike:
    def test_underscore_is_one_character(self, texts: None) -> None:
        assert sku_set({"name": {"$like": "_amp"}}) == {"A", "B"}
        assert sku_set({"name": {"$like": "L___"}}) == {"A"}
        assert sku_set({"name": {"$like": "L__"}}) == set()
        assert sku_set({"description": {"$like": "a_b"}}) == {"B", "C", "H"}

    def test_percent_is_any_run(self, texts: None) -> None:
        assert sku_set({"name": {"$like": "%"}}) == ALL
        assert sku_set({"name": {"$like": "%amp%"}}) == {"A", "B", "D"}
        assert sku_set({"description": {"$like": "50% off"}}) == {"A", "G"}

    def test_escaped_percent_is_literal(self, texts: None) -> None:
        assert sku_set({"description": {"$like": "50\\% off"}}) == {"A"}
        assert sku_set({"description": {"$like": "%\\%"}}) == {"I"}
        assert sku_set({"description": {"$ilike": "50\\% OFF"}}) == {"A"}

    def test_escaped_underscore_is_literal(self, texts: None) -> None:
        assert sku_set({"description": {"$like": "a\\_b"}}) == {"B"}
        assert sku_set({"description": {"$ilike": "A\\_B"}}) == {"B"}

    def test_escaped_backslash_is_literal(self, texts: None) -> None:
        assert sku_set({"description": {"$like": "back\\\\slash"}}) == {"F"}
        assert sku_set({"description": {"$like": "%\\\\%"}}) == {"F"}

    def test_escaped_ordinary_character_is_itself(self, texts: None) -> None:
        assert sku_set({"name": {"$like": "\\Lamp"}}) == {"A"}

    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [("x*y", {"E"}), ("q?[z]", {"F"}), ("%*%", {"E"}), ("%[%", {"F"}), ("q?%", {"F"}), ("[z]", set())],
    )
    def test_glob_metacharacters_are_literal(self, texts: None, pattern: str, expected: set[str]) -> None:
        # SQLite runs $like as GLOB: * ? [ in the value must not become GLOB wildcards
        # ("x*y" would match "xzzy", "q?[z]" would match "qaz").
        assert sku_set({"name": {"$like": pattern}}) == expected
        assert sku_set({"name": {"$ilike": pattern.upper()}}) == expected

    def test_glob_metacharacters_in_other_text_operators(self, texts: None) -> None:
        assert sku_set({"name": {"$contains": "*"}}) == {"E"}
        assert sku_set({"name": {"$startswith": "q?"}}) == {"F"}
        assert sku_set({"name": {"$endswith": "[z]"}}) == {"F"}
        assert sku_set({"name": {"$icontains": "?[Z"}}) == {"F"}
        assert sku_set({"description": {"$contains": "%"}}) == {"A", "I"}
        assert sku_set({"description": {"$contains": "_"}}) == {"B"}
        assert sku_set({"description": {"$startswith": "50%"}}) == {"A"}
        assert sku_set({"description": {"$endswith": "_b"}}) == {"B"}

    def test_trailing_lone_backslash_refused(self, texts: None, unchanged_db: Any) -> None:
        for op in ("$like", "$ilike"):
            message = build_error({"description": {op: "50\\"}})
            assert f"{op} on 'description'" in message
            assert "lone backslash" in message
        # An escaped backslash at the end is a literal backslash, and fine.
        assert sku_set({"description": {"$like": "%\\\\"}}) == set()


# Empty patterns and NULL ---------------------------------------------------------------------------


class TestEmptyAndNull:
    def test_empty_patterns(self, texts: None) -> None:
        for op in ("$contains", "$icontains", "$startswith", "$endswith", "$regex", "$iregex"):
            assert sku_set({"description": {op: ""}}) == NOT_NULL, op
        # LIKE '' matches only the empty string.
        assert sku_set({"description": {"$like": ""}}) == {"E"}
        assert sku_set({"description": {"$ilike": ""}}) == {"E"}

    def test_empty_string_value(self, texts: None) -> None:
        assert sku_set({"description": {"$contains": "a"}}) == {"B", "C", "F", "H"}
        assert "E" not in sku_set({"description": {"$like": "%_%"}})
        assert "E" in sku_set({"description": {"$not": {"$like": "%_%"}}})

    @pytest.mark.parametrize(
        ("op", "match_all"),
        [
            ("$contains", ""),
            ("$icontains", ""),
            ("$startswith", ""),
            ("$endswith", ""),
            ("$like", "%"),
            ("$ilike", "%"),
            ("$regex", ""),
            ("$iregex", ".*"),
        ],
    )
    def test_null_never_matches_but_not_does(self, texts: None, op: str, match_all: str) -> None:
        assert sku_set({"description": {op: match_all}}) == NOT_NULL
        assert sku_set({"description": {"$not": {op: match_all}}}) == {"D"}
        assert sku_set({"$not": {"description": {op: match_all}}}) == {"D"}
        assert sku_set({"$nor": [{"description": {op: match_all}}]}) == {"D"}

    def test_not_of_a_selective_pattern_includes_null(self, texts: None) -> None:
        assert sku_set({"description": {"$not": {"$contains": "off"}}}) == ALL - {"A", "G"}
        assert sku_set({"description": {"$not": {"$regex": "^a"}}}) == ALL - {"B", "C", "H"}


# Regular expressions ------------------------------------------------------------------------------


class TestRegex:
    def test_unanchored_unless_anchored(self, texts: None) -> None:
        assert sku_set({"name": {"$regex": "amp"}}) == {"A", "B", "D"}
        assert sku_set({"name": {"$regex": "^amp"}}) == set()
        assert sku_set({"name": {"$regex": "^Lamp$"}}) == {"A"}
        assert sku_set({"name": {"$regex": "^L"}}) == {"A", "C"}
        assert sku_set({"name": {"$regex": "p$"}}) == {"A", "B", "D"}

    def test_common_subset(self, texts: None) -> None:
        assert sku_set({"name": {"$regex": "^[a-z]+$"}}) == {"B", "I", "H"}
        assert sku_set({"name": {"$regex": "a.p"}}) == {"A", "B", "D"}
        assert sku_set({"name": {"$regex": "^(Lamp|Shade)$"}}) == {"A", "G"}
        assert sku_set({"name": {"$regex": "z{2}"}}) == {"H"}
        assert sku_set({"name": {"$regex": "\\s"}}) == {"C", "D"}
        assert sku_set({"name": {"$regex": "x\\*y"}}) == {"E"}
        assert sku_set({"description": {"$regex": "\\d+%"}}) == {"A", "I"}

    def test_iregex_and_inline_flag(self, texts: None) -> None:
        assert sku_set({"name": {"$iregex": "^lamp"}}) == {"A", "B", "C"}
        assert sku_set({"name": {"$regex": "(?i)^lamp"}}) == {"A", "B", "C"}

    def test_regex_through_relation(self, texts: None) -> None:
        from shop.models import Order

        lamp = Product.objects.get(sku="A")
        Order.objects.create(product=lamp, quantity=1, notes="o1")
        Order.objects.create(product=Product.objects.get(sku="B"), quantity=1, notes="o2")
        result = run([("OrderListNode", "n", {"filter": {"product.name": {"$regex": "^L"}}})])["n"]
        assert [r["notes"] for r in result["records"]] == ["o1"]


# $contains: containment on JSON, substring on text -------------------------------------------------


class TestContains:
    def test_object_containment(self, tagged: None) -> None:
        assert names({"metadata": {"$contains": {"x": "Lamp"}}}) == {"ada"}
        assert names({"metadata": {"$contains": {"nest": {"c": 2}}}}) == {"ed"}
        assert names({"metadata": {"$contains": {"nest": {"a": {"b": 1}}}}}) == {"ed"}
        assert names({"metadata": {"$contains": {"nest": {"a": {"b": 2}}}}}) == {"gus"}
        assert names({"metadata": {"$contains": {"nest": {"a": {"b": 3}}}}}) == set()
        assert names({"metadata": {"$contains": {"x": "LAMP post", "nest": {"c": 2}}}}) == {"ed"}
        assert names({"metadata": {"$contains": {"x": "LAMP post", "nest": {"c": 3}}}}) == set()

    def test_containment_on_a_key(self, tagged: None) -> None:
        assert names({"metadata.nest": {"$contains": {"a": {"b": 1}}}}) == {"ed"}
        assert names({"metadata.nest": {"$contains": {"c": 2}}}) == {"ed"}

    def test_containment_is_equality_of_values_not_substring(self, tagged: None) -> None:
        # The object form compares values; the string form on a key is a substring search.
        assert names({"metadata": {"$contains": {"x": "Lamp"}}}) == {"ada"}
        assert names({"metadata.x": {"$contains": "Lamp"}}) == {"ada", "gus"}

    def test_not_containment(self, tagged: None) -> None:
        assert names({"metadata": {"$not": {"$contains": {"nest": {"c": 2}}}}}) == {
            "ada",
            "bob",
            "cy",
            "di",
            "gus",
        }

    def test_substring_on_text(self, texts: None) -> None:
        assert sku_set({"name": {"$contains": "amp"}}) == {"A", "B", "D"}
        assert sku_set({"name": {"$contains": "amp p"}}) == set()
        assert sku_set({"name": {"$contains": "AMP p"}}) == {"C"}

    def test_containment_keys_are_checked(self, tagged: None) -> None:
        message = build_error({"metadata": {"$contains": {"a__b": 1}}}, "CustomerListNode")
        assert "a__b" in message


# Refused operands ---------------------------------------------------------------------------------


class TestRefused:
    @pytest.mark.parametrize("op", TEXT_OPS)
    @pytest.mark.parametrize(
        ("value", "kind"), [(5, "int"), (["a"], "list"), (None, "NoneType"), (True, "bool")]
    )
    def test_non_string_operand(self, unchanged_db: Any, op: str, value: Any, kind: str) -> None:
        message = build_error({"name": {op: value}})
        assert f"{op} on 'name' takes a string, not {kind}" in message

    @pytest.mark.parametrize("op", TEXT_OPS)
    @pytest.mark.parametrize(
        ("field", "kind"),
        [
            ("stock", "IntegerField"),
            ("price", "DecimalField"),
            ("active", "BooleanField"),
            ("created_at", "DateTimeField"),
        ],
    )
    def test_text_operator_on_non_text_field(self, unchanged_db: Any, op: str, field: str, kind: str) -> None:
        message = build_error({field: {op: "1"}})
        assert op in message
        assert f"'{field}' is a {kind}" in message
        assert "text field or a JSON key" in message

    def test_text_operator_on_whole_json_field(self, unchanged_db: Any) -> None:
        message = build_error({"metadata": {"$like": "%x%"}}, "CustomerListNode")
        assert "$like" in message and "'metadata' is a JSONField" in message

    def test_text_operator_through_relation_on_non_text(self, unchanged_db: Any) -> None:
        message = build_error({"product.stock": {"$startswith": "1"}}, "OrderListNode")
        assert "$startswith" in message and "'product.stock' is a IntegerField" in message

    def test_operand_from_input_checked_at_run_time(self, texts: None, unchanged_db: Any) -> None:
        workflow = build([("ProductListNode", "n", {"filter": {"name": {"$contains": "{{q}}"}}})])
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(workflow, inputs={"q": 42})
        assert info.value.node_id == "n"
        assert "$contains on 'name' takes a string, not int" in str(info.value)
        results, _ = LocalRuntime().execute(workflow, inputs={"q": "Lamp"})
        assert [r["sku"] for r in results["n"]["records"]] == ["A"]


# $regex guards --------------------------------------------------------------------------------------


class TestRegexGuards:
    def test_too_long(self, unchanged_db: Any) -> None:
        with override_settings(DATAFLOW={**settings.DATAFLOW, "MAX_REGEX_LENGTH": 10}):
            message = build_error({"name": {"$regex": "a" * 11}})
            build([("ProductListNode", "n", {"filter": {"name": {"$regex": "a" * 10}}})])
            iregex = build_error({"description": {"$iregex": "b" * 12}})
        assert "$regex on 'name'" in message
        assert "11 characters" in message
        assert "MAX_REGEX_LENGTH" in message and "(10)" in message
        assert "$iregex on 'description'" in iregex and "12 characters" in iregex

    def test_default_length_bound(self, unchanged_db: Any) -> None:
        message = build_error({"name": {"$regex": "a" * 1001}})
        assert "1001 characters" in message and "(1000)" in message
        build([("ProductListNode", "n", {"filter": {"name": {"$regex": "a" * 1000}}})])

    @pytest.mark.parametrize("pattern", ["(", "[a-", "a**", "(?<=a+)b", "\\"])
    def test_invalid_pattern(self, unchanged_db: Any, pattern: str) -> None:
        message = build_error({"name": {"$regex": pattern}})
        assert "$regex on 'name'" in message
        assert "invalid regular expression" in message

    def test_named_groups(self, unchanged_db: Any) -> None:
        message = build_error({"name": {"$regex": "(?P<word>amp)"}})
        assert "$regex on 'name'" in message and "named groups" in message

    @pytest.mark.parametrize("pattern", ["\\bLamp", "post\\B", "(a|\\bb)"])
    def test_word_boundaries_refused(self, unchanged_db: Any, pattern: str) -> None:
        # \b is a word boundary in Python (SQLite's REGEXP) but a backspace in PostgreSQL.
        message = build_error({"name": {"$regex": pattern}})
        assert "\\b and \\B" in message and "PostgreSQL" in message

    def test_escaped_backslash_before_b_is_fine(self, texts: None) -> None:
        assert sku_set({"description": {"$regex": "\\\\slash"}}) == {"F"}

    @pytest.mark.parametrize(
        "pattern", ["(a+)+", "(a*)*b", "(\\w+\\s?)*$", "((a+))+", "(?:a{2,}b)+", "(x+x+)+y", "(a+){2,}"]
    )
    def test_nested_quantifiers(self, unchanged_db: Any, pattern: str) -> None:
        message = build_error({"name": {"$regex": pattern}})
        assert "$regex on 'name'" in message
        assert "nested quantifiers" in message
        assert "$iregex on 'name'" in build_error({"name": {"$iregex": pattern}})

    @pytest.mark.parametrize("pattern", ["(ab)+", "a+b+", "(a|b)+", "[(]a+[)]+", "(Lamp)?", "x*y*"])
    def test_plain_quantifiers_allowed(self, texts: None, pattern: str) -> None:
        workflow = build([("ProductListNode", "n", {"filter": {"name": {"$regex": pattern}}})])
        assert workflow.node("n").params["filter"] == {"name": {"$regex": pattern}}

    def test_guard_on_json_key(self, unchanged_db: Any) -> None:
        message = build_error({"metadata.x": {"$regex": "(a+)+"}}, "CustomerListNode")
        assert "$regex on 'metadata.x'" in message and "nested quantifiers" in message

    def test_pattern_from_input_checked_before_the_query(self, texts: None, unchanged_db: Any) -> None:
        workflow = build([("ProductListNode", "n", {"filter": {"name": {"$regex": "{{p}}"}}})])
        for pattern, words in [("(a+)+", "nested quantifiers"), ("(", "invalid regular expression")]:
            with pytest.raises(NodeExecutionError) as info:
                LocalRuntime().execute(workflow, inputs={"p": pattern})
            assert info.value.node_id == "n"
            assert isinstance(info.value.__cause__, WorkflowValidationError)
            assert words in str(info.value)
        results, _ = LocalRuntime().execute(workflow, inputs={"p": "^q"})
        assert {r["sku"] for r in results["n"]["records"]} == {"F", "I"}
