-- Every experiment the engine analyses with its arms and planned shares: the enabled A/B tests
-- of seeds/experiments.csv with their variants, and every enabled audience on every audience
-- date as an experiment of its own (treatment vs holdout, shares 1 - holdout_share and
-- holdout_share), so one engine (userops/experiments.py) analyses both.
with

experiments as (
    select * from {{ ref('experiments') }}
),

variants as (
    select * from {{ ref('experiment_variants') }}
),

audiences as (
    select * from {{ ref('audiences') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

ab_arms as (
    select
        variants.experiment_id,
        'ab_test' as experiment_kind,
        variants.variant,
        variants.is_control,
        variants.allocation_share,
        experiments.outcome_window_days
    from variants
    inner join experiments
        on variants.experiment_id = experiments.experiment_id
    where experiments.is_enabled
),

audience_arms as (
    {%- for group in ['treatment', 'holdout'] %}
    select
        audiences.audience_id || ':' || cast(as_of_dates.as_of_date as {{ dbt.type_string() }})
            as experiment_id,
        'audience' as experiment_kind,
        '{{ group }}' as variant,
        {{ 'true' if group == 'holdout' else 'false' }} as is_control,
        {{ 'audiences.holdout_share' if group == 'holdout' else '1 - audiences.holdout_share' }}
            as allocation_share,
        {{ var('audience_outcome_days') }} as outcome_window_days
    from audiences
    cross join as_of_dates
    where audiences.is_enabled
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select * from ab_arms
    union all
    select * from audience_arms
)

select * from final
