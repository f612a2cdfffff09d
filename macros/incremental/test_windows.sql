{#- Data tests of the large incremental tables check, in a day-partitioned run, only the rows
    the run wrote; a plain build checks every row. dbt does not render project macros in a
    test's `where` config, so the config names the window with a placeholder this override of
    dbt's get_where_subquery expands:

        where: "__day_window__(activity_date)"   -- the run's business days (in_day_window)
        where: "__as_of_window__(as_of_date)"    -- the run's as-of dates (in_as_of_window)

    Without the vars start_date / end_date both expand to `true`. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set where = expand_window_placeholders(where) -%}
        {#- `1 = 1 and`: Spark reads `from t where (...)` as the alias `where` with a column list. -#}
        {%- set filtered -%}
            (select * from {{ relation }} where 1 = 1 and {{ where }}) dbt_subquery
        {%- endset -%}
        {{- return(filtered) -}}
    {%- else -%}
        {{- return(relation) -}}
    {%- endif -%}
{%- endmacro %}


{% macro expand_window_placeholders(where) -%}
    {%- set pattern = '__(day|as_of)_window__\\(([A-Za-z_][A-Za-z0-9_]*)\\)' -%}
    {%- set ns = namespace(text=where) -%}
    {%- for kind, column in modules.re.findall(pattern, where) -%}
        {%- set condition = in_day_window(column) if kind == 'day' else in_as_of_window(column) -%}
        {%- set ns.text = ns.text | replace('__' ~ kind ~ '_window__(' ~ column ~ ')', '(' ~ condition ~ ')') -%}
    {%- endfor -%}
    {{- return(ns.text) -}}
{%- endmacro %}
