"""The events between the services: each producer's catalogue (services/<name>/events.py), the
notifier's subscriptions (services/notifier/subscriptions.py) and docs/events.md say the same thing.

A payload field a mail template reads must be one its event carries, so renaming a field in a
catalogue fails here, not in a customer's inbox.
"""
from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime

import pytest
from jinja2 import meta, nodes

from services.identity import events as identity_events
from services.notifier.messages import Renderer
from services.notifier.subscriptions import TEMPLATES, mail_queues
from services.tenancy import events as tenancy_events
from support import ROOT

CATALOGUES = (identity_events, tenancy_events)


def payload_fields(catalogue) -> dict[str, list[str]]:
    """event type -> payload fields, from calling every constructor in the catalogue."""
    fields = {}
    for _name, constructor in inspect.getmembers(catalogue, inspect.isfunction):
        if constructor.__module__ != catalogue.__name__:
            continue
        parameters = inspect.signature(constructor).parameters
        assert all(p.kind is p.KEYWORD_ONLY for p in parameters.values()), constructor.__name__
        event = constructor(**{name: datetime(2026, 1, 1, tzinfo=UTC) if name == "expires_at" else "x"
                               for name in parameters})
        assert event.type not in fields, f"two constructors make {event.type}"
        fields[event.type] = list(event.data)
    return fields


PUBLISHED = {event_type: fields for catalogue in CATALOGUES for event_type, fields in payload_fields(catalogue).items()}


def test_each_catalogue_has_one_constructor_per_type_it_declares():
    for catalogue in CATALOGUES:
        assert sorted(payload_fields(catalogue)) == sorted(catalogue.TYPES), catalogue.__name__


def test_the_notifier_is_bound_to_exactly_the_types_it_has_a_template_for_and_each_is_published():
    assert mail_queues().event_types == tuple(TEMPLATES)
    assert set(TEMPLATES) <= set(PUBLISHED), set(TEMPLATES) - set(PUBLISHED)


def _variables(env, name: str) -> set[str]:
    """Every variable a template, and the layout it extends, read from the mail's context (an included
    partial reads what the `with` around its include sets)."""
    tree = env.parse(env.loader.get_source(env, name)[0])
    found = set(meta.find_undeclared_variables(tree))
    for extends in tree.find_all(nodes.Extends):
        found |= _variables(env, extends.template.value)
    return found


@pytest.mark.parametrize("event_type", sorted(TEMPLATES))
def test_every_field_a_mail_reads_is_in_its_events_payload(event_type):
    template, extra = TEMPLATES[event_type]
    renderer = Renderer("Threshold <no-reply@threshold.test>")
    read = set()
    for part, env in (("subject.txt", renderer.text_env), ("body.txt", renderer.text_env),
                      ("body.html", renderer.env)):
        read |= _variables(env, f"email/{template}/{part}")
    assert read, template  # the parse found the variables at all
    assert read <= set(PUBLISHED[event_type]) | set(extra), read - set(PUBLISHED[event_type]) - set(extra)


def test_docs_list_every_event_with_its_payload_and_every_mail():
    published, mails = (ROOT / "docs" / "events.md").read_text().split("## Published")[1].split("## What the notifier")
    rows = {match[0]: [field.strip(" `") for field in match[1].split(",")]
            for match in re.findall(r"^\| `([a-z_.]+)` \| ([^|]+) \|", published, re.MULTILINE)}
    assert rows == PUBLISHED
    mailed = {event_type for cell in re.findall(r"^\| (`[^|]+) \|", mails, re.MULTILINE)
              for event_type in re.findall(r"`([a-z_.]+)`", cell)}
    assert mailed == set(TEMPLATES)
