"""Remote systems the operator reconciles against, each behind a small Protocol (see base.py)."""
