"""Consent records, community protocols and the decision function (issue: consent and protocols)."""
