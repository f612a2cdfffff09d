-- One row per user and segment dimension: the static breakdowns (overall, acquisition channel,
-- platform, city tier) every retention and metric model groups by. Layers are point-in-time and
-- are joined where a period starts, not here.
with

users as {{ inline_cte() }} (
    select * from {{ ref('users') }}
),

final as (
    select
        user_id,
        'overall' as segment_dimension,
        'all' as segment_value
    from users

    union all

    select
        user_id,
        'acquisition_channel' as segment_dimension,
        coalesce(acquisition_channel, 'unknown') as segment_value
    from users

    union all

    select
        user_id,
        'platform' as segment_dimension,
        coalesce(platform, 'unknown') as segment_value
    from users

    union all

    select
        user_id,
        'city_tier' as segment_dimension,
        coalesce(cast(city_tier as {{ dbt.type_string() }}), 'unknown') as segment_value
    from users
)

select * from final
