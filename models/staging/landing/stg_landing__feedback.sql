-- Clean survey answers with the NPS category of NPS answers.
with

base_feedback as (
    select * from {{ ref('base_landing__feedback') }}
),

final as (
    select
        feedback_id,
        user_id,
        submitted_at,
        {{ to_business_date('submitted_at') }} as submitted_date,
        survey_type,
        score,
        case
            when survey_type <> 'nps' then null
            when score >= 9 then 'promoter'
            when score >= 7 then 'passive'
            else 'detractor'
        end as nps_category,
        survey_type = 'csat' and score >= 4 as is_satisfied,
        comment,
        survey_channel,
        source_file
    from base_feedback
    where quarantine_reason is null
)

select * from final
