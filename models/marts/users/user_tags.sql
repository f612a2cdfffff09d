-- One row per user and tag value on the latest as-of date (the latest data day): the tags
-- operators select audiences from today, with names from the catalogue. History: user_tag_history.
with

tags as (
    select * from {{ ref('int_user_tags_evaluated') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

tag_names as (
    select distinct
        tag_code,
        tag_name_zh,
        tag_name_en
    from {{ ref('tag_catalogue') }}
),

final as (
    select
        tags.user_id,
        tags.as_of_date,
        tags.tag_code,
        tags.tag_value,
        tags.category,
        tag_names.tag_name_zh,
        tag_names.tag_name_en
    from tags
    inner join as_of_dates
        on tags.as_of_date = as_of_dates.as_of_date
    left join tag_names
        on tags.tag_code = tag_names.tag_code
    where as_of_dates.is_latest
)

select * from final
