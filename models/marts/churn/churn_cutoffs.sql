-- One row per cutoff (as-of date) of the churn data set, counted back from the latest data date.
with

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

data_range as (
    select
        min(activity_date) as first_data_date,
        max(activity_date) as latest_data_date
    from user_days
),

steps as (
    {{ dbt.generate_series(var('churn_cutoff_count')) }}
),

cutoffs as (
    select
        {{ dbt.dateadd(
            'day',
            '(1 - steps.generated_number) * ' ~ var('churn_cutoff_step_days'),
            'data_range.latest_data_date',
        ) }} as cutoff_date,
        data_range.first_data_date,
        data_range.latest_data_date
    from steps
    cross join data_range
),

final as (
    select
        cast(cutoff_date as date) as cutoff_date,
        cast(
            {{ dbt.dateadd('day', var('churn_label_window_days'), 'cutoff_date') }} as date
        ) as label_window_end_date,
        cast({{ var('churn_label_window_days') }} as integer) as label_window_days,
        -- The label needs every day of (cutoff, cutoff + N] to be in the data.
        {{ dbt.dateadd('day', var('churn_label_window_days'), 'cutoff_date') }}
            <= latest_data_date as is_label_complete,
        cutoff_date = latest_data_date as is_latest,
        latest_data_date
    from cutoffs
    where cutoff_date >= first_data_date
)

select * from final
