-- Standard N-day retention (次日/7日/30日留存) per signup day and segment.
{%- set horizons = [1, 7, 30] %}
with

user_days as {{ inline_cte() }} (
    select * from {{ ref('int_user_days_aggregated') }}
),

users as (
    select * from {{ ref('users') }}
),

user_segments as (
    select * from {{ ref('int_user_segments_unpivoted') }}
),

data_dates as (
    select max(activity_date) as latest_data_date
    from user_days
),

active_days as (
    select user_id, activity_date
    from user_days
    where is_active
),

new_users as (
    select user_id, signup_date
    from users
    where signup_date is not null
),

returns as (
    -- One row per new user and horizon N when the user is active on signup day + N.
    {%- for horizon in horizons %}
    select
        new_users.user_id,
        {{ horizon }} as horizon_days
    from new_users
    inner join active_days
        on new_users.user_id = active_days.user_id
        and active_days.activity_date = cast({{ dbt.dateadd('day', horizon, 'new_users.signup_date') }} as date)
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

user_returns as (
    select
        new_users.user_id,
        new_users.signup_date,
        {%- for horizon in horizons %}
        count(case when returns.horizon_days = {{ horizon }} then 1 end) > 0 as is_d{{ horizon }}_retained{{ ',' if not loop.last }}
        {%- endfor %}
    from new_users
    left join returns
        on new_users.user_id = returns.user_id
    group by new_users.user_id, new_users.signup_date
),

aggregated as (
    select
        user_returns.signup_date,
        user_segments.segment_dimension,
        user_segments.segment_value,
        count(*) as new_users,
        {%- for horizon in horizons %}
        count(case when user_returns.is_d{{ horizon }}_retained then 1 end) as d{{ horizon }}_retained_users{{ ',' if not loop.last }}
        {%- endfor %}
    from user_returns
    inner join user_segments
        on user_returns.user_id = user_segments.user_id
    group by user_returns.signup_date, user_segments.segment_dimension, user_segments.segment_value
),

final as (
    select
        aggregated.signup_date,
        aggregated.segment_dimension,
        aggregated.segment_value,
        aggregated.new_users,
        {%- for horizon in horizons %}
        -- Null until day N after signup is in the data: an unobserved day is not a zero.
        case
            when cast({{ dbt.dateadd('day', horizon, 'aggregated.signup_date') }} as date) <= data_dates.latest_data_date
                then aggregated.d{{ horizon }}_retained_users
        end as d{{ horizon }}_retained_users,
        case
            when cast({{ dbt.dateadd('day', horizon, 'aggregated.signup_date') }} as date) <= data_dates.latest_data_date
                then {{ safe_ratio('aggregated.d' ~ horizon ~ '_retained_users', 'aggregated.new_users') }}
        end as d{{ horizon }}_retention_rate{{ ',' if not loop.last }}
        {%- endfor %}
    from aggregated
    cross join data_dates
)

select * from final
