{#- Spark versions of macros/cross_db/values.sql where the Spark SQL default__ differs from
    DuckDB. -#}

{#- Valid JSON text, strictly (RFC 8259), as DuckDB's json_valid: from_json (default__) accepts
    single-quoted strings ({'query': 'milk'}), which the landing contract quarantines.
    try_parse_json needs Spark 4. -#}
{% macro spark__is_valid_json(expression) -%}
    (try_parse_json({{ expression }}) is not null)
{%- endmacro %}
