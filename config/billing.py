"""The billing rules in force: the packaged defaults, or HOMEROOM_BILLING_RULES."""

from __future__ import annotations

from pathlib import Path

from rooms.attendance.rules import BillingRules, BillingRulesError, load_rules


def load_billing_rules(path: Path | None) -> BillingRules:
    """Parse the rules file at ``path`` (the packaged config/billing.toml when None).

    Raises SystemExit naming the file and the field, so a bad rules file stops start-up.
    """
    where = str(path) if path else "config/billing.toml"
    try:
        text = path.read_text("utf-8") if path else _packaged()
        return load_rules(text)
    except (OSError, BillingRulesError) as exc:
        raise SystemExit(
            f"error: invalid_settings: HOMEROOM_BILLING_RULES ({where}): {exc}"
        ) from None


def _packaged() -> str:
    # Beside this module, in a checkout and in an installed package alike.
    return Path(__file__).with_name("billing.toml").read_text("utf-8")
