{#- Calendar periods for cohorts and metrics, built on dbt's cross-database date macros so the
    same SQL runs on DuckDB and Spark. Weeks start on Monday (date_trunc('week') on both). -#}

{#- Start of the day/week/month holding a date, as a date. -#}
{% macro period_start(grain, date_expression) -%}
    cast({{ dbt.date_trunc(grain, date_expression) }} as date)
{%- endmacro %}


{#- The date `periods` whole periods after a date (weeks as 7 days: dateadd('week') differs by
    adapter). -#}
{% macro add_periods(grain, periods, date_expression) -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.dateadd('day', '7 * (' ~ periods ~ ')', date_expression) }} as date)
    {%- else -%}
        cast({{ dbt.dateadd(grain, periods, date_expression) }} as date)
    {%- endif -%}
{%- endmacro %}


{#- Whole periods from one period start to a later one (both already truncated to the grain). -#}
{% macro periods_between(grain, start_expression, end_expression) -%}
    {%- if grain == 'week' -%}
        cast(floor({{ dbt.datediff(start_expression, end_expression, 'day') }} / 7) as integer)
    {%- else -%}
        cast({{ dbt.datediff(start_expression, end_expression, grain) }} as integer)
    {%- endif -%}
{%- endmacro %}


{#- Days from one date to another as an integer. -#}
{% macro days_between(start_expression, end_expression) -%}
    cast({{ dbt.datediff(start_expression, end_expression, 'day') }} as integer)
{%- endmacro %}


{#- Exact median of a numeric expression within a group. -#}
{% macro exact_median(expression) %}
    {{- return(adapter.dispatch('exact_median', 'userops')(expression)) -}}
{% endmacro %}

{% macro default__exact_median(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}

{% macro duckdb__exact_median(expression) -%}
    quantile_cont({{ expression }}, 0.5)
{%- endmacro %}


{#- A ratio as double, null when the denominator is zero or null. -#}
{% macro safe_ratio(numerator, denominator) -%}
    cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0)
{%- endmacro %}
