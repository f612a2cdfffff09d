{#- Generic data tests for the metric seeds: each failing row says what is wrong. -#}

{#- Exactly one row satisfies the expression (e.g. one north-star metric). -#}
{% test exactly_one_row_where(model, expression) %}
    select
        count(*) as matching_rows,
        'expected exactly one row where {{ expression | replace("'", "") }}' as failure_reason
    from {{ model }}
    where {{ expression }}
    having count(*) <> 1
{% endtest %}


{#- Steps of each group are numbered 1, 2, 3 ... without gaps or repeats. -#}
{% test consecutive_steps(model, column_name, group_column) %}
    select
        {{ group_column }},
        min({{ column_name }}) as first_step,
        max({{ column_name }}) as last_step,
        count(*) as step_rows,
        'steps must be numbered 1..n without gaps' as failure_reason
    from {{ model }}
    group by {{ group_column }}
    having min({{ column_name }}) <> 1
        or max({{ column_name }}) <> count(*)
        or count(distinct {{ column_name }}) <> count(*)
{% endtest %}


{#- A column has one value per group (e.g. one conversion window per funnel). -#}
{% test constant_within(model, column_name, group_column) %}
    select
        {{ group_column }},
        count(distinct {{ column_name }}) as distinct_values,
        '{{ column_name }} must be the same on every row of a {{ group_column }}' as failure_reason
    from {{ model }}
    group by {{ group_column }}
    having count(distinct {{ column_name }}) > 1
{% endtest %}


{#- Decomposition invariant: within each group the parts add up exactly (to a float tolerance)
    to the total change they explain. -#}
{% test parts_sum_to_total(model, group_by, parts, total, tolerance=0.000001) %}
    select
        {{ group_by | join(', ') }},
        sum({{ parts | join(' + ') }}) as sum_of_parts,
        max({{ total }}) as total_change,
        min({{ total }}) as min_total_change
    from {{ model }}
    group by {{ group_by | join(', ') }}
    having abs(sum({{ parts | join(' + ') }}) - max({{ total }})) > {{ tolerance }} * (1 + abs(max({{ total }})))
        or max({{ total }}) <> min({{ total }})
{% endtest %}


{#- Funnel seeds: every step number a row names (e.g. an exclusion's from_step / to_step)
    is a step of its funnel in seeds/funnels.csv. -#}
{% test funnel_steps_exist(model, funnels, step_columns) %}
    {%- for step_column in step_columns %}
    select
        checked.funnel_code,
        checked.{{ step_column }} as step_number,
        '{{ step_column }} is not a step of the funnel in seeds/funnels.csv' as failure_reason
    from {{ model }} as checked
    left join {{ funnels }} as funnel_steps
        on checked.funnel_code = funnel_steps.funnel_code
        and checked.{{ step_column }} = funnel_steps.step_number
    where funnel_steps.step_number is null
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{% endtest %}


{#- Funnels in `any` order have no per-step windows (steps after step 1 have no order to
    measure a window from). -#}
{% test no_step_windows_in_any_order(model, settings) %}
    select
        funnel_steps.funnel_code,
        funnel_steps.step_number,
        'step_window_minutes is not allowed in a funnel with order_mode any' as failure_reason
    from {{ model }} as funnel_steps
    inner join {{ settings }} as funnel_settings
        on funnel_steps.funnel_code = funnel_settings.funnel_code
    where funnel_settings.order_mode = 'any'
        and funnel_steps.step_window_minutes is not null
{% endtest %}
