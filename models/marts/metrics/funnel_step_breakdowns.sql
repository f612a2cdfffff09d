-- Funnel steps broken down by the property seeds/funnel_settings.csv names (breakdown_property):
-- one row per funnel with a breakdown, entry day, step and property value. Event properties are
-- attributed first touch (the value on the attempt's step-1 event), last touch (on the last
-- step it reached) or per step (on each step's own event); user properties come from
-- marts.users. Excluded attempts are not counted (funnel_conversions.excluded_attempts).
{%- set first_entry_date = funnel_first_entry_date() %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[funnel_entry_delete_hook()],
    )
}}

with

funnels as (
    select * from {{ ref('funnels') }}
),

funnel_settings as (
    select * from {{ ref('funnel_settings') }}
),

steps_reached as (
    select * from {{ ref('int_funnel_steps_reached') }}
    {%- if first_entry_date is not none %}
    where entry_date >= cast('{{ first_entry_date }}' as date)
    {%- endif %}
),

users as (
    select * from {{ ref('users') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

data_dates as (
    select max(activity_date) as latest_data_date
    from user_days
),

breakdowns as (
    select
        funnel_code,
        breakdown_property,
        case
            {%- for property in var('funnel_user_properties') %}
            when breakdown_property = '{{ property }}' then 'user'
            {%- endfor %}
            else coalesce(breakdown_attribution, 'first_touch')
        end as attribution
    from funnel_settings
    where breakdown_property is not null
),

attempt_steps as (
    select
        steps_reached.funnel_code,
        steps_reached.user_id,
        steps_reached.entry_date,
        steps_reached.step_number,
        breakdowns.breakdown_property,
        breakdowns.attribution,
        steps_reached.breakdown_value as step_value,
        first_value(steps_reached.breakdown_value) over (
            partition by steps_reached.funnel_code, steps_reached.user_id, steps_reached.entry_date
            order by steps_reached.step_number
        ) as first_touch_value,
        first_value(steps_reached.breakdown_value) over (
            partition by steps_reached.funnel_code, steps_reached.user_id, steps_reached.entry_date
            order by steps_reached.step_number desc
        ) as last_touch_value
    from steps_reached
    inner join breakdowns
        on steps_reached.funnel_code = breakdowns.funnel_code
    where not steps_reached.is_excluded
),

attributed as (
    select
        attempt_steps.funnel_code,
        attempt_steps.entry_date,
        attempt_steps.step_number,
        attempt_steps.breakdown_property,
        attempt_steps.attribution,
        -- '(none)': the attributed event or user has no value for the property.
        coalesce(
            case attempt_steps.attribution
                when 'first_touch' then attempt_steps.first_touch_value
                when 'last_touch' then attempt_steps.last_touch_value
                when 'per_step' then attempt_steps.step_value
                else case attempt_steps.breakdown_property
                    {%- for property in var('funnel_user_properties') %}
                    when '{{ property }}' then cast(users.{{ property }} as {{ dbt.type_string() }})
                    {%- endfor %}
                end
            end,
            '(none)'
        ) as breakdown_value
    from attempt_steps
    left join users
        on attempt_steps.user_id = users.user_id
),

step_counts as (
    select
        funnel_code,
        entry_date,
        step_number,
        breakdown_property,
        attribution,
        breakdown_value,
        count(*) as users
    from attributed
    group by funnel_code, entry_date, step_number, breakdown_property, attribution, breakdown_value
),

-- Every step of a value seen on an entry day, zero where no attempt of that value reached it.
grid as (
    select distinct
        step_counts.funnel_code,
        step_counts.entry_date,
        step_counts.breakdown_property,
        step_counts.attribution,
        step_counts.breakdown_value,
        funnels.step_number,
        funnels.event_name,
        funnels.conversion_window_hours
    from step_counts
    inner join funnels
        on step_counts.funnel_code = funnels.funnel_code
),

counted as (
    select
        grid.funnel_code,
        grid.entry_date,
        grid.step_number,
        grid.event_name,
        grid.conversion_window_hours,
        grid.breakdown_property,
        grid.attribution,
        grid.breakdown_value,
        coalesce(step_counts.users, 0) as users
    from grid
    left join step_counts
        on grid.funnel_code = step_counts.funnel_code
        and grid.entry_date = step_counts.entry_date
        and grid.step_number = step_counts.step_number
        and grid.breakdown_value = step_counts.breakdown_value
),

neighbours as (
    select
        counted.*,
        lag(counted.users) over value_steps as previous_step_users,
        first_value(counted.users) over value_steps as first_step_users
    from counted
    window value_steps as (
        partition by counted.funnel_code, counted.entry_date, counted.breakdown_value
        order by counted.step_number
    )
),

final as (
    select
        neighbours.funnel_code,
        neighbours.entry_date,
        neighbours.step_number,
        neighbours.event_name,
        neighbours.breakdown_property,
        neighbours.attribution,
        neighbours.breakdown_value,
        cast(neighbours.users as bigint) as users,
        -- Per-step values are not one cohort across steps: no rate between them.
        case when neighbours.attribution <> 'per_step' then
            {{ safe_ratio('neighbours.users', 'neighbours.previous_step_users') }}
        end as step_conversion_rate,
        case when neighbours.attribution <> 'per_step' then
            {{ safe_ratio('neighbours.users', 'neighbours.first_step_users') }}
        end as overall_conversion_rate,
        {{ dbt.dateadd('hour', 'neighbours.conversion_window_hours', dbt.dateadd('day', 1, 'neighbours.entry_date')) }}
            > {{ dbt.dateadd('day', 1, 'data_dates.latest_data_date') }} as is_provisional
    from neighbours
    cross join data_dates
)

select * from final
