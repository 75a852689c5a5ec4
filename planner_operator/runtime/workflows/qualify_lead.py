"""``qualify-lead``: score a new CRM contact from the fields the event carries.

A deliberately simple, explainable rubric (every point comes with its reason): a business email
domain, a senior job title, a company, company size, and a lifecycle stage past "subscriber".
HubSpot's contact-created event carries only the contact id (``objectId``); with no properties
the result says the contact needs enrichment (a lookup this local workflow cannot do) rather
than inventing a score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FREE_MAIL = frozenset(
    {"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "gmx.de", "web.de"}
)
SENIOR = ("chief", "vp", "vice president", "head", "director", "founder", "owner", "lead")
STAGES = {"lead": 10, "marketingqualifiedlead": 15, "salesqualifiedlead": 25, "opportunity": 25}


def run(input: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    props = input.get("properties")
    fields: Mapping[str, Any] = props if isinstance(props, Mapping) else input
    contact = str(input.get("objectId") or input.get("id") or fields.get("hs_object_id") or "")
    known = [
        f
        for f in ("email", "jobtitle", "company", "numemployees", "lifecyclestage")
        if fields.get(f)
    ]
    if not known:
        return {
            "contact_id": contact,
            "grade": "unknown",
            "score": None,
            "reasons": ["the event has no contact properties: enrich it from the CRM first"],
            "needs_enrichment": True,
        }
    score, reasons = 0, []
    email = str(fields.get("email") or "")
    domain = email.rpartition("@")[2].lower()
    if domain and domain not in FREE_MAIL:
        score += 25
        reasons.append(f"business email domain {domain} (+25)")
    title = str(fields.get("jobtitle") or "").lower()
    if any(word in title for word in SENIOR):
        score += 25
        reasons.append(f"senior title '{fields.get('jobtitle')}' (+25)")
    if fields.get("company"):
        score += 10
        reasons.append("company given (+10)")
    size = _int(fields.get("numemployees"))
    if size is not None and size >= 50:
        points = 15 if size >= 500 else 10
        score += points
        reasons.append(f"{size} employees (+{points})")
    stage = str(fields.get("lifecyclestage") or "").lower()
    if stage in STAGES:
        score += STAGES[stage]
        reasons.append(f"lifecycle stage {stage} (+{STAGES[stage]})")
    grade = "A" if score >= 70 else "B" if score >= 45 else "C" if score >= 20 else "D"
    return {"contact_id": contact, "grade": grade, "score": score, "reasons": reasons}


def _int(value: Any) -> int | None:
    try:
        return int(str(value).replace(",", "").split("-")[0])
    except ValueError:
        return None
