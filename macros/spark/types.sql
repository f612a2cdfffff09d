{#- dbt's cast on Spark with the project's type names (written for DuckDB: `varchar`) put
    through sql_type. dbt casts with it when it checks a model contract (get_empty_schema_sql,
    from the data_type of each column in the model's yml). -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ sql_type(type) }})
{%- endmacro %}
