"""The grader machinery: sample and grade types, templates, formulas, building and running."""
