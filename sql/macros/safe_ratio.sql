{#- num / den as a DOUBLE, NULL when den is 0: a KPI with nothing to measure is unknown, not 0. -#}
{%- macro safe_ratio(num, den) -%}
CASE WHEN ({{ den }}) = 0 THEN NULL ELSE CAST({{ num }} AS DOUBLE) / ({{ den }}) END
{%- endmacro -%}
