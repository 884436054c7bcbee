"""Stages 3-5 of a pass: observe live SSM, plan (pure), apply, with the safety rules."""
