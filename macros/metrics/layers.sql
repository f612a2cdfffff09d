{#- Layer breakdowns (分层): the layer dimensions of marts.users.user_layers that metrics and
    cohorts are broken down by, and their unpivot into segment rows. The point-in-time join
    itself (int_layer_dates_mapped) lives in each consuming model. -#}

{#- user_layers columns that can be a layer dimension. -#}
{% macro layer_dimension_columns() -%}
    {{- return(['rfm_segment_code', 'rfm_segment', 'lifecycle_stage', 'period_state',
        'activity_tier', 'value_tier']) -}}
{%- endmacro %}


{#- var metric_layer_dimensions, checked so a typo fails at compile time with a clear message. -#}
{% macro metric_layer_dimensions() -%}
    {%- set dimensions = var('metric_layer_dimensions') -%}
    {%- for dimension in dimensions -%}
        {%- if dimension not in layer_dimension_columns() -%}
            {{- exceptions.raise_compiler_error(
                "var metric_layer_dimensions: '" ~ dimension ~ "' is not a layer column of "
                ~ "user_layers (" ~ layer_dimension_columns() | join(', ') ~ ")") -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(dimensions) -}}
{%- endmacro %}


{#- var decomposition_layer, which must be one of metric_layer_dimensions. -#}
{% macro decomposition_layer() -%}
    {%- set dimension = var('decomposition_layer') -%}
    {%- if dimension not in metric_layer_dimensions() -%}
        {{- exceptions.raise_compiler_error(
            "var decomposition_layer: '" ~ dimension ~ "' is not in var metric_layer_dimensions ("
            ~ metric_layer_dimensions() | join(', ') ~ ")") -}}
    {%- endif -%}
    {{- return(dimension) -}}
{%- endmacro %}


{#- The layer dimension columns of user_layers, appended to a select list: each one comes with
    its leading comma (`, alias.column`), so an empty var metric_layer_dimensions adds none. -#}
{% macro layer_columns(layers_alias) -%}
    {%- for dimension in metric_layer_dimensions() -%}
        ,
        {{ layers_alias }}.{{ dimension }}
    {%- endfor -%}
{%- endmacro %}


{#- One row per row of a relation and layer dimension: (key columns, segment_dimension,
    segment_value). A user without a layer row as of the period (signed up after the as-of date,
    or no as-of date yet) is `unassigned`, so every layer dimension still sums to overall. -#}
{% macro unpivot_layers(relation, key_columns) -%}
    {%- if not metric_layer_dimensions() %}
    select
        {%- for column in key_columns %}
        {{ column }},
        {%- endfor %}
        cast(null as {{ dbt.type_string() }}) as segment_dimension,
        cast(null as {{ dbt.type_string() }}) as segment_value
    from {{ relation }}
    where 1 = 0
    {%- endif %}
    {%- for dimension in metric_layer_dimensions() %}
    select
        {%- for column in key_columns %}
        {{ column }},
        {%- endfor %}
        '{{ dimension }}' as segment_dimension,
        coalesce(cast({{ dimension }} as {{ dbt.type_string() }}), 'unassigned') as segment_value
    from {{ relation }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}


{#- Data test: within each group, every dimension's values add up to the overall row for each
    additive column (users, orders, amounts), so no user is lost or double counted in a
    breakdown. Returns the groups and dimensions that do not add up. -#}
{% test dimensions_sum_to_overall(model, group_by, columns, dimension_column='segment_dimension', tolerance=0.000001) %}
    with

    per_dimension as (
        select
            {{ group_by | join(', ') }},
            {{ dimension_column }} as dimension,
            {%- for column in columns %}
            sum({{ column }}) as {{ column }}{% if not loop.last %},{% endif %}
            {%- endfor %}
        from {{ model }}
        group by {{ group_by | join(', ') }}, {{ dimension_column }}
    ),

    overall as (
        select * from per_dimension where dimension = 'overall'
    )

    select
        {%- for column in group_by %}
        per_dimension.{{ column }},
        {%- endfor %}
        per_dimension.dimension,
        {%- for column in columns %}
        per_dimension.{{ column }} as dimension_{{ column }},
        overall.{{ column }} as overall_{{ column }},
        {%- endfor %}
        'the values of this dimension do not add up to overall' as failure_reason
    from per_dimension
    left join overall
        on {% for column in group_by %}per_dimension.{{ column }} = overall.{{ column }}{% if not loop.last %}
        and {% endif %}{% endfor %}
    where per_dimension.dimension <> 'overall'
        and (
            overall.dimension is null
            {%- for column in columns %}
            or abs(coalesce(per_dimension.{{ column }}, 0) - coalesce(overall.{{ column }}, 0))
                > {{ tolerance }} * (1 + abs(coalesce(overall.{{ column }}, 0)))
            {%- endfor %}
        )
{% endtest %}
