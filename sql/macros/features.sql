{#- The model's features, in the order fraud_prob takes them: read from the model card that
    `runner train` wrote (before the first training, project.yml's DOUBLE source fields but Time;
    runner/compile/features.py says why). -#}
{%- set feature_names = model_features -%}

{#- V1, V2, ..., Amount; with a prefix (e.g. 't.') each name is qualified. -#}
{%- macro feature_list(prefix='') -%}
{%- for f in feature_names %}{{ prefix }}{{ f }}{{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro -%}
