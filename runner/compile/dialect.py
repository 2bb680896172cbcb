"""The Spark SQL dialect the runner parses models with: sqlglot's, plus what analysts write.

sqlglot 30.30 stops a GROUP BY list at the WINDOW token (it expects a named
`WINDOW w AS (...)` clause there), so `GROUP BY window(event_time, '1 minute')`
fails with "Expecting )". Spark accepts it, and it is the form analysts write
most. Dropping WINDOW from the tokens that end a GROUP BY lets the list parse
`window(...)` as a function; a named window clause after the list still parses,
because the list ends at the first element not followed by a comma.
"""
from __future__ import annotations

from sqlglot.dialects.spark import Spark
from sqlglot.parsers.spark import SparkParser
from sqlglot.tokens import TokenType


class FraudSparkParser(SparkParser):
    QUERY_MODIFIER_TOKENS = SparkParser.QUERY_MODIFIER_TOKENS - {TokenType.WINDOW}


class FraudSpark(Spark):
    """Spark SQL as the runner reads it; use `read=FraudSpark` / `dialect=FraudSpark`."""

    Parser = FraudSparkParser
