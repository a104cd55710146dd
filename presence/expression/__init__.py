"""What the face should do while the agent speaks: clause-level expressions from the reply text."""

from presence.expression.scorer import EXPRESSIONS, Expression, score, split_clauses

__all__ = ["EXPRESSIONS", "Expression", "score", "split_clauses"]
