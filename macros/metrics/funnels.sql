{#- Funnels v2 (seeds/funnels.csv, funnel_settings.csv, funnel_exclusions.csv; docs/funnels.md). -#}

{#- First entry day a day-partitioned run recomputes, as SQL over ref('funnels'): the window's
    first day back by the longest conversion window in whole days plus one (attempts entered
    late on a day). -#}
{% macro funnel_first_entry_sql() -%}
    cast({{ dbt.dateadd('day', '-(cast(ceil(max(conversion_window_hours) / 24.0) as integer) + 1)', day_window_start() or 'current_date') }} as date)
{%- endmacro %}


{#- That day as a value (compile time), or none when the run recomputes every entry day. -#}
{% macro funnel_first_entry_date() %}
    {%- if execute and is_incremental() and day_window_start() is not none -%}
        {{- return(run_query('select ' ~ funnel_first_entry_sql() ~ ' from ' ~ ref('funnels')).columns[0].values()[0]) -}}
    {%- endif -%}
    {{- return(none) -}}
{% endmacro %}


{#- Pre-hook deleting the entry days a run recomputes (every row without a window). -#}
{% macro funnel_entry_delete_hook() -%}
    {{- return(windowed_delete_hook(
        "delete from {{ this }} where entry_date >= (select " ~ funnel_first_entry_sql()
        ~ " from {{ ref('funnels') }})"
    )) -}}
{%- endmacro %}


{#- The value of the event property named by `property_column` (a seed column holding a name
    from var funnel_event_properties) on the event `events_alias`: the platform and page
    columns, any other name a key of the properties JSON. Null for names not in the var. -#}
{% macro funnel_event_property(property_column, events_alias) -%}
    case {{ property_column }}
        {%- for property in var('funnel_event_properties') %}
        when '{{ property }}' then
            {%- if property in ('platform', 'page') %} {{ events_alias }}.{{ property }}
            {%- else %} {{ json_text(events_alias ~ '.properties', property) }}
            {%- endif %}
        {%- endfor %}
    end
{%- endmacro %}


{#- The p-th fraction (0..1) continuous percentile of an expression within a group, linearly
    interpolated between the closest ranks (DuckDB quantile_cont, Spark percentile: the same
    definition). -#}
{% macro percentile_cont_value(expression, fraction) %}
    {{- return(adapter.dispatch('percentile_cont_value', 'userops')(expression, fraction)) -}}
{% endmacro %}

{% macro default__percentile_cont_value(expression, fraction) -%}
    percentile({{ expression }}, {{ fraction }})
{%- endmacro %}

{% macro duckdb__percentile_cont_value(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}
