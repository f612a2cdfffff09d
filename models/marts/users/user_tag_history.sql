-- One row per user, tag value and unbroken run of as-of dates carrying it: point-in-time tag
-- history (SCD type 2 on the as-of grain). "Who had tag X = v on date D" is
-- valid_from <= D and (valid_to is null or D < valid_to), for D from the first as-of date on.
with

tags as (
    select * from {{ ref('int_user_tags_evaluated') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

tags_indexed as (
    select
        tags.user_id,
        tags.tag_code,
        tags.tag_value,
        tags.category,
        as_of_dates.as_of_date,
        as_of_dates.as_of_index,
        -- Constant within a run of consecutive as-of dates with the same value (gaps and islands).
        as_of_dates.as_of_index - row_number() over (
            partition by tags.user_id, tags.tag_code, tags.tag_value
            order by as_of_dates.as_of_index
        ) as run_key
    from tags
    inner join as_of_dates
        on tags.as_of_date = as_of_dates.as_of_date
),

runs as (
    select
        user_id,
        tag_code,
        tag_value,
        category,
        min(as_of_date) as valid_from,
        max(as_of_index) as last_as_of_index
    from tags_indexed
    group by user_id, tag_code, tag_value, category, run_key
),

final as (
    select
        runs.user_id,
        runs.tag_code,
        runs.tag_value,
        runs.category,
        runs.valid_from,
        next_dates.as_of_date as valid_to,
        next_dates.as_of_date is null as is_current
    from runs
    left join as_of_dates as next_dates
        on runs.last_as_of_index + 1 = next_dates.as_of_index
)

select * from final
