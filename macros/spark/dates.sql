{#-
    dbt.dateadd and dbt.datediff on Spark, replacing dbt-spark 1.11's versions:
    - dbt-spark wraps every argument in assert_not_null, which repeats the expression three
      times; nested calls (the end of a period = dateadd of an add_periods) grow exponentially,
      and retention_cohorts compiled to 70 kB of SQL that Spark took minutes to plan;
    - its hour/minute/second dateadd drops fractions of a second (via unix seconds);
    - its datediff returns int for days and a double for months, where DuckDB's date_diff returns
      a bigint (the marts' contracts say bigint).
    Semantics are DuckDB's: dateadd returns a timestamp (time of day kept); datediff counts the
    boundaries of the date part crossed between the two values. The session time zone is UTC
    (profiles.yml), so day arithmetic has no daylight-saving gaps.
-#}

{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {%- set part = datepart | lower -%}
    {%- if part not in ['year', 'quarter', 'month', 'week', 'day', 'hour', 'minute', 'second'] -%}
        {{ exceptions.raise_compiler_error("dateadd: datepart '" ~ datepart ~ "' is not supported on Spark") }}
    {%- endif -%}
    timestampadd({{ part | upper }}, cast(({{ interval }}) as bigint), {{ from_date_or_timestamp }})
{%- endmacro %}


{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- set part = datepart | lower -%}
    {%- set seconds = {'hour': 3600, 'minute': 60, 'second': 1} -%}
    {%- if part == 'day' -%}
        cast(datediff(cast({{ second_date }} as date), cast({{ first_date }} as date)) as bigint)
    {%- elif part == 'month' -%}
        cast((year({{ second_date }}) * 12 + month({{ second_date }}))
            - (year({{ first_date }}) * 12 + month({{ first_date }})) as bigint)
    {%- elif part == 'quarter' -%}
        cast((year({{ second_date }}) * 4 + quarter({{ second_date }}))
            - (year({{ first_date }}) * 4 + quarter({{ first_date }})) as bigint)
    {%- elif part == 'year' -%}
        cast(year({{ second_date }}) - year({{ first_date }}) as bigint)
    {%- elif part in seconds -%}
        cast(floor(unix_timestamp({{ second_date }}) / {{ seconds[part] }})
            - floor(unix_timestamp({{ first_date }}) / {{ seconds[part] }}) as bigint)
    {%- else -%}
        cast({{ dbt.spark__datediff(first_date, second_date, datepart) }} as bigint)
    {%- endif -%}
{%- endmacro %}
