-- Every raw marketing-spend row, typed, with its quarantine reason (null = clean).
with

source as (
    {% if landing_table_ready('marketing_spend') %}
    select {{ landing_projection('marketing_spend') }} from {{ source('landing', 'marketing_spend') }}
    {% else %}
    {{ empty_landing_table('marketing_spend') }}
    {% endif %}
),

typed as (
    select
        source.spend_date as spend_date_raw,
        {{ safe_cast('source.spend_date', 'date') }} as spend_date,
        lower({{ clean_text('source.channel') }}) as channel,
        source.spend as spend_raw,
        {{ safe_cast('source.spend', 'decimal(18, 2)') }} as spend,
        source.filename as source_file,
        {{ row_as_json('source') }} as raw_record
    from source
),

checked as (
    select
        *,
        {{ first_failed_check([
            ('missing_key', 'spend_date_raw is null or channel is null'),
            ('missing_value', 'spend_raw is null'),
            ('unparseable_value', unparseable('spend_date_raw', 'date') ~ ' or ' ~ unparseable('spend_raw', 'decimal(18, 2)')),
            ('bad_timestamp', out_of_range_timestamp('cast(spend_date as timestamp)')),
            ('negative_amount', 'spend < 0'),
        ]) }} as check_reason
    from typed
),

final as (
    select
        *,
        {{ quarantine_duplicates(['spend_date', 'channel'], 'spend') }} as quarantine_reason
    from checked
)

select * from final
