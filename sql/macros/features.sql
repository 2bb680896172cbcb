{#- The model's features, in the order fraud_prob takes them (the trained model's order). -#}
{%- set feature_names = ['V1', 'V2', 'V3', 'V4', 'V5', 'V6', 'V7', 'V8', 'V9', 'V10',
                         'V11', 'V12', 'V13', 'V14', 'V15', 'V16', 'V17', 'V18', 'V19', 'V20',
                         'V21', 'V22', 'V23', 'V24', 'V25', 'V26', 'V27', 'V28', 'Amount'] -%}

{#- V1, V2, ..., Amount; with a prefix (e.g. 't.') each name is qualified. -#}
{%- macro feature_list(prefix='') -%}
{%- for f in feature_names %}{{ prefix }}{{ f }}{{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro -%}
