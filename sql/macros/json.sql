{#- The from_json schema of a transaction: the fields of project.yml's source schema, in order,
    with event_time read as STRING so that an absent one (NULL) and an unparseable one (text that
    does not cast) are told apart, and _corrupt_record last: it gets the whole text when the value
    is not a JSON object or a field has the wrong type (Spark still fills the other fields). -#}
{%- macro transaction_json_schema() -%}
{{ schema_ddl(source_schema('transactions'), retype={'event_time': 'STRING'}, append={'_corrupt_record': 'STRING'}) }}
{%- endmacro -%}

{#- TRUE when x is a finite double (not NaN, not +/-Infinity; JSON numbers beyond the double
    range, like 1e400, parse as Infinity). -#}
{%- macro is_finite(x) -%}
(NOT isnan({{ x }}) AND abs({{ x }}) <> CAST('Infinity' AS DOUBLE))
{%- endmacro -%}
