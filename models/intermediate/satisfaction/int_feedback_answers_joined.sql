-- Clean survey answers with whether the user was active on the answer's day: the one place the
-- "answered on a day they were active" rule of survey_response_rate is written, read by
-- satisfaction_metric_values and by the MetricFlow semantic model survey_answers.
with

feedback as (
    select * from {{ ref('stg_landing__feedback') }}
),

user_days as (
    select * from {{ ref('int_user_days_aggregated') }}
),

final as (
    select
        feedback.feedback_id,
        feedback.user_id,
        feedback.submitted_date,
        feedback.survey_type,
        feedback.nps_category,
        feedback.is_satisfied,
        -- A user-day row can exist without activity (only inactive events), hence is_active.
        coalesce(user_days.is_active, false) as is_answered_on_active_day
    from feedback
    left join user_days
        on feedback.user_id = user_days.user_id
        and feedback.submitted_date = user_days.activity_date
)

select * from final
