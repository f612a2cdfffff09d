{#- Use the folder's schema name as-is (staging, intermediate, marts, config) so BI tools read
    stable names such as marts.users instead of main_marts.users. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
