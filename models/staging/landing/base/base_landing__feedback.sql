-- Every raw survey-answer row, typed, with its quarantine reason (null = clean). Read only by
-- stg_landing__feedback (clean rows) and quarantined_rows (the rest).
{%- set columns = [
    'feedback_id',
    'user_id',
    'submitted_at_raw',
    'submitted_at',
    'survey_type',
    'score_raw',
    'score',
    'comment',
    'survey_channel',
    'source_file',
    'check_reason',
] %}
with

source as {{ inline_cte() }} (
    {% if landing_table_ready('feedback') %}
    select {{ landing_projection('feedback') }} from {{ source('landing', 'feedback') }}
    {% else %}
    {{ empty_landing_table('feedback') }}
    {% endif %}
),

known_users as (
    select user_id from {{ ref('int_users_unified') }}
),

typed as (
    select
        {{ clean_text('source.feedback_id') }} as feedback_id,
        {{ clean_text('source.user_id') }} as user_id,
        source.submitted_at as submitted_at_raw,
        {{ safe_cast('source.submitted_at', 'timestamp') }} as submitted_at,
        lower({{ clean_text('source.survey_type') }}) as survey_type,
        source.score as score_raw,
        {{ safe_cast('source.score', 'integer') }} as score,
        {{ clean_text('source.comment') }} as comment,
        lower({{ clean_text('source.survey_channel') }}) as survey_channel,
        known_users.user_id is not null as is_known_user,
        source.filename as source_file,
        {{ row_as_struct('source') }} as raw_source
    from source
    left join known_users
        on {{ clean_text('source.user_id') }} = known_users.user_id
),

checked as {{ inline_cte() }} (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'feedback_id is null or user_id is null'),
            ('missing_value', 'submitted_at_raw is null or survey_type is null or score_raw is null'),
            ('unparseable_value', unparseable('submitted_at_raw', 'timestamp') ~ ' or ' ~ unparseable('score_raw', 'integer')),
            ('invalid_value', "survey_type not in ('nps', 'csat')"
                ~ " or (survey_type = 'nps' and score not between 0 and 10)"
                ~ " or (survey_type = 'csat' and score not between 1 and 5)"),
            ('bad_timestamp', out_of_range_timestamp('submitted_at')),
            ('unknown_user', 'not is_known_user'),
        ]) }} as check_reason
    from typed
),

{{ quarantine_ranked_ctes(['feedback_id'], 'submitted_at', columns) }}

select * from final
