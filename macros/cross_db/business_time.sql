{#- Business day boundaries: one time zone for the whole project (var business_timezone). -#}

{% macro to_business_timestamp(utc_timestamp) %}
    {{- return(adapter.dispatch('to_business_timestamp', 'userops')(utc_timestamp)) -}}
{% endmacro %}

{% macro default__to_business_timestamp(utc_timestamp) -%}
    from_utc_timestamp({{ utc_timestamp }}, '{{ var("business_timezone") }}')
{%- endmacro %}

{% macro duckdb__to_business_timestamp(utc_timestamp) -%}
    cast((({{ utc_timestamp }}) at time zone 'UTC') at time zone '{{ var("business_timezone") }}' as timestamp)
{%- endmacro %}


{% macro to_business_date(utc_timestamp) %}
    {{- return('cast(' ~ to_business_timestamp(utc_timestamp) ~ ' as date)') -}}
{% endmacro %}


{#- The build's clock as a UTC timestamp without zone, comparable with landing timestamps. -#}
{% macro utc_now() %}
    {{- return(adapter.dispatch('utc_now', 'userops')()) -}}
{% endmacro %}

{% macro default__utc_now() -%}
    cast(current_timestamp() as timestamp)
{%- endmacro %}

{% macro duckdb__utc_now() -%}
    cast(now() at time zone 'UTC' as timestamp)
{%- endmacro %}
