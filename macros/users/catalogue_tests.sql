{#- Generic tests for the operator-edited seeds of tags and audiences: each returns the bad rows. -#}

{#- Every row of a tag code must agree on names, category, rule type, metric and cadence. -#}
{% test tag_codes_are_consistent(model) %}
    select
        tag_code,
        count(*) as catalogue_rows
    from {{ model }}
    group by tag_code
    having count(distinct tag_name_zh) > 1
        or count(distinct tag_name_en) > 1
        or count(distinct category) > 1
        or count(distinct rule_type) > 1
        or count(distinct metric) > 1
        or count(distinct refresh_cadence) > 1
        or (max(rule_type) = 'attribute' and count(*) > 1)
{% endtest %}


{#- Range rows of one tag code must not overlap (a user would get two values). -#}
{% test tag_ranges_do_not_overlap(model) %}
    select
        first_range.tag_code,
        first_range.tag_value,
        second_range.tag_value as overlapping_tag_value
    from {{ model }} as first_range
    inner join {{ model }} as second_range
        on first_range.tag_code = second_range.tag_code
        and first_range.tag_value < second_range.tag_value
    where first_range.rule_type = 'range'
        and second_range.rule_type = 'range'
        and coalesce(first_range.lower_bound, -1e18) < coalesce(second_range.upper_bound, 1e18)
        and coalesce(second_range.lower_bound, -1e18) < coalesce(first_range.upper_bound, 1e18)
{% endtest %}


{#- Each condition group of an audience needs at least one `equals` condition: a group of only
    negations would select from every user and tag, which audiences do not support. -#}
{% test audience_groups_have_an_equals_condition(model) %}
    select
        audience_id,
        condition_group
    from {{ model }}
    group by audience_id, condition_group
    having count(*) filter (where condition_operator = 'equals') = 0
{% endtest %}
