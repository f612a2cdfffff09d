{#- Spark implementations of macros/users/users_cross_db.sql where the Spark SQL default__
    differs from DuckDB in result type. -#}

{#- As default__hash_bucket, divided as double: a decimal literal divisor makes Spark return a
    decimal(33,12), where DuckDB returns a double (the audience contracts say double). -#}
{% macro spark__hash_bucket(text_expression) -%}
    (cast(conv(substr({{ dbt.hash(text_expression) }}, 1, 8), 16, 10) as bigint) / cast(4294967296 as double))
{%- endmacro %}
