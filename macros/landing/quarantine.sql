{#-
    The quarantine rules shared by every base_landing__ model. `checks` is a list of
    (reason_code, condition) pairs; the first that holds is the row's reason, in the contract's
    priority order (docs/landing_contract.md):
    missing_key, missing_value, unparseable_value, invalid_value, bad_timestamp, negative_amount.
    `duplicate` is decided after these, among rows that passed them (quarantine_duplicates).
-#}
{% macro first_failed_check(checks) -%}
    case
    {%- for reason, condition in checks %}
        when {{ condition }} then '{{ reason }}'
    {%- endfor %}
    end
{%- endmacro %}


{#- Present but not castable to its type. -#}
{% macro unparseable(column, data_type) -%}
    ({{ column }} is not null and {{ safe_cast(column, data_type) }} is null)
{%- endmacro %}


{#- Outside the plausible range: before var min_valid_timestamp or after the build + max_future_days. -#}
{% macro out_of_range_timestamp(typed_column) -%}
    ({{ typed_column }} < cast('{{ var("min_valid_timestamp") }}' as timestamp)
        or {{ typed_column }} > {{ dbt.dateadd('day', var('max_future_days'), utc_now()) }})
{%- endmacro %}


{#-
    Final reason per row: the first failed check, else `duplicate` when an earlier valid row has
    the same key. "Earlier" = first by source file name (load day, then part), then `order_by`.
    Rows that failed a check never shadow a valid row with the same key.
-#}
{% macro quarantine_duplicates(key_columns, order_by) -%}
    coalesce(
        check_reason,
        case
            when row_number() over (
                partition by {{ key_columns | join(', ') }}, check_reason is null
                order by source_file, {{ order_by }}
            ) > 1 then 'duplicate'
        end
    )
{%- endmacro %}
