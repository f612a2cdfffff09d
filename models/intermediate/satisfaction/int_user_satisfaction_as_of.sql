-- One row per user and as-of date on which the user has a satisfaction signal: the category of
-- their latest NPS answer in the var nps_tag_lookback_days days up to the as-of date, and their
-- complaint tickets in the var recent_complaint_days days up to it. Read by the tags
-- (int_user_tags_evaluated: nps_category, recent_complaint).
{%- set nps_days = var('nps_tag_lookback_days') %}
{%- set complaint_days = var('recent_complaint_days') %}
with

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

feedback as (
    select * from {{ ref('stg_landing__feedback') }}
),

tickets as (
    select * from {{ ref('stg_landing__service_tickets') }}
),

nps_answers as (
    select
        as_of_dates.as_of_date,
        feedback.user_id,
        feedback.nps_category,
        row_number() over (
            partition by as_of_dates.as_of_date, feedback.user_id
            order by feedback.submitted_at desc, feedback.feedback_id desc
        ) as recency_rank
    from as_of_dates
    inner join feedback
        on feedback.submitted_date <= as_of_dates.as_of_date
        and feedback.submitted_date
            > cast({{ dbt.dateadd('day', -nps_days, 'as_of_dates.as_of_date') }} as date)
    where feedback.survey_type = 'nps'
),

latest_nps as (
    select
        as_of_date,
        user_id,
        nps_category
    from nps_answers
    where recency_rank = 1
),

complaints as (
    select
        as_of_dates.as_of_date,
        tickets.user_id,
        count(*) as complaint_tickets
    from as_of_dates
    inner join tickets
        on tickets.opened_date <= as_of_dates.as_of_date
        and tickets.opened_date
            > cast({{ dbt.dateadd('day', -complaint_days, 'as_of_dates.as_of_date') }} as date)
    where tickets.is_complaint
    group by as_of_dates.as_of_date, tickets.user_id
),

final as (
    select
        coalesce(latest_nps.as_of_date, complaints.as_of_date) as as_of_date,
        coalesce(latest_nps.user_id, complaints.user_id) as user_id,
        latest_nps.nps_category,
        coalesce(complaints.complaint_tickets, 0) as recent_complaint_tickets
    from latest_nps
    full outer join complaints
        on latest_nps.as_of_date = complaints.as_of_date
        and latest_nps.user_id = complaints.user_id
)

select * from final
