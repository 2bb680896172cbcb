{#- A JSON field read as STRING holds the value's JSON text: this turns it into a DOUBLE, or NULL
    when the text is not a number (a string like "abc", true, an object: a bad type).
    Spark writes non-finite numbers (NaN, Infinity, 1e400) into a STRING field as the quoted
    text "NaN" / "Infinity", so those are unquoted first and cast to NaN / Infinity. -#}
{%- macro json_double(field) -%}
try_cast(CASE WHEN {{ field }} IN ('"NaN"', '"Infinity"', '"-Infinity"') THEN substr({{ field }}, 2, length({{ field }}) - 2) ELSE {{ field }} END AS DOUBLE)
{%- endmacro -%}

{#- TRUE when x is a finite double (not NaN, not +/-Infinity). -#}
{%- macro is_finite(x) -%}
(NOT isnan({{ x }}) AND abs({{ x }}) <> CAST('Infinity' AS DOUBLE))
{%- endmacro -%}

{#- The from_json schema: every source field as STRING, plus the corrupt-record column.
    Reading each field as text lets one parse tell absent/null (NULL) from present-but-wrong
    (text that does not cast), and _corrupt_record catches what is not a JSON object. -#}
{%- macro json_text_schema() -%}
'txn_id STRING, event_time STRING, Time STRING, {% for f in feature_names %}{{ f }} STRING, {% endfor %}Class STRING, _corrupt_record STRING'
{%- endmacro -%}
