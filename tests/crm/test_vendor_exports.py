"""The three exports a new user brings (HubSpot UTF-8 with BOM, Mautic cp1252 with semicolons and German
headers, Mailchimp with quoted tag lists), internationalized addresses among them: every valid address lands."""

from __future__ import annotations

import io

import pytest

from crm.importing import auto_mapping, import_create, import_execute
from crm.models import Contact

HUBSPOT = (
    "Record ID,First Name,Last Name,Email,Phone Number,Company Name,Lifecycle Stage,Create Date\r\n"
    "101,Zoë,Brontë,Zoë.Bronte@Example.com,+44 20 7946 0000,Brontë & Co,lead,2026-01-02 10:00\r\n"
    "102,Jürgen,Groß,jürgen@bäckerei.example,,Bäckerei Groß,customer,2026-01-03 11:00\r\n"
    "103,Mei,Lin,用户@例子.广告,,例子,lead,2026-01-04 12:00\r\n"
    "104,Ann,Lee,ann.lee@xn--bckerei-5wa.example,,,lead,2026-01-05 13:00\r\n"
    "105,Bad,Row,not-an-address,,,lead,2026-01-06 14:00\r\n"
    "106,Raj,Patel,raj.patel@example.co.uk\u00a0,,,lead,2026-01-07 15:00\r\n"
)
HUBSPOT_VALID = {
    "zoë.bronte@example.com",
    "jürgen@bäckerei.example",
    "用户@例子.广告",
    "ann.lee@bäckerei.example",
    "raj.patel@example.co.uk",
}

MAUTIC = (
    "E-Mail;Vorname;Nachname;Firma;Telefon;Position\r\n"
    "josé.müller@example.de;José;Müller;Müller GmbH;+49 30 1234;Geschäftsführer\r\n"
    "FRANÇOIS@Exemple.fr;François;Lefèvre;Société Générale;;Directeur\r\n"
    "anna.schön@example.at;Anna;Schön;;;\r\n"
    "doppelt@@example.de;Falsch;Adresse;;;\r\n"
    "peter@example.ch;Peter;Weiß;Weiß AG;;Einkauf\r\n"
)
MAUTIC_VALID = {"josé.müller@example.de", "françois@exemple.fr", "anna.schön@example.at", "peter@example.ch"}

MAILCHIMP = (
    "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,TAGS\n"
    'ines@example.pt,Inês,Sá,2,2026-01-01 09:00:00,"""vip"",""newsletter"""\n'
    'søren@example.dk,Søren,Ørsted,3,2026-01-02 09:00:00,"""newsletter"""\n'
    'li.wei@例子.广告,Li,Wei,1,2026-01-03 09:00:00,""\n'
    'no-at-sign.example.com,No,At,1,2026-01-04 09:00:00,"""vip"""\n'
)
MAILCHIMP_VALID = {"ines@example.pt", "søren@example.dk", "li.wei@例子.广告"}


def _import(workspace, content: bytes, name: str):
    run = import_create(workspace=workspace, fh=io.BytesIO(content), name=name, enqueue=False)
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize(
    ("name", "content", "valid", "invalid"),
    [
        ("hubspot-contacts.csv", b"\xef\xbb\xbf" + HUBSPOT.encode("utf-8"), HUBSPOT_VALID, 1),
        ("mautic-export.csv", MAUTIC.encode("cp1252"), MAUTIC_VALID, 1),
        ("mailchimp-subscribed.csv", MAILCHIMP.encode("utf-8"), MAILCHIMP_VALID, 1),
    ],
)
def test_vendor_export_imports_every_valid_address(workspace, name, content, valid, invalid):
    run = _import(workspace, content, name)
    assert set(Contact.objects.for_workspace(workspace).values_list("email", flat=True)) == valid
    assert (run.created, run.failed) == (len(valid), invalid)
    assert (
        run.mapping["Email" if "hubspot" in name else "E-Mail" if "mautic" in name else "Email Address"]
        == "email"
    )


def test_mautic_german_headers_and_cp1252_names(workspace):
    _import(workspace, MAUTIC.encode("cp1252"), "mautic.csv")
    contact = Contact.objects.get(workspace=workspace, email="josé.müller@example.de")
    assert (contact.first_name, contact.last_name, contact.title, contact.phone) == (
        "José",
        "Müller",
        "Geschäftsführer",
        "+49 30 1234",
    )
    assert contact.company.name == "Müller GmbH"


def test_mailchimp_quoted_tag_lists_become_clean_tags(workspace):
    _import(workspace, MAILCHIMP.encode(), "mailchimp.csv")
    tags = {
        c.email: sorted(c.tags.values_list("name", flat=True))
        for c in Contact.objects.for_workspace(workspace)
    }
    assert tags == {
        "ines@example.pt": ["newsletter", "vip"],
        "søren@example.dk": ["newsletter"],
        "li.wei@例子.广告": [],
    }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ["E-Mail", "Vorname", "Nachname", "Firma", "Telefon", "Webseite"],
            ["email", "first_name", "last_name", "company", "phone", "company_domain"],
        ),
        (
            ["Courriel", "Prénom", "Nom", "Société", "Téléphone", "Fonction"],
            ["email", "first_name", "last_name", "company", "phone", "title"],
        ),
        (
            ["Correo electrónico", "Nombre", "Apellido", "Empresa", "Teléfono", "Cargo"],
            ["email", "first_name", "last_name", "company", "phone", "title"],
        ),
        (["E-mail-Adresse", "Apellidos", "Entreprise"], ["email", "last_name", "company"]),
    ],
)
def test_non_english_headers_auto_map(workspace, headers, expected):
    assert auto_mapping(headers, workspace) == dict(zip(headers, expected, strict=True))
