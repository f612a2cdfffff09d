{#- Generic data tests for the experiment seeds: each failing row says what is wrong. -#}

{% test exactly_one_control_per_experiment(model) %}
    select
        experiment_id,
        count(case when is_control then 1 end) as control_variants,
        'every experiment needs exactly one variant with is_control = true' as failure_reason
    from {{ model }}
    group by experiment_id
    having count(case when is_control then 1 end) <> 1
{% endtest %}


{% test allocation_shares_sum_to_one(model) %}
    select
        experiment_id,
        sum(allocation_share) as total_share,
        'the allocation shares of an experiment must add up to 1' as failure_reason
    from {{ model }}
    group by experiment_id
    having abs(sum(allocation_share) - 1) > 0.000001
{% endtest %}


{% test at_most_max_variants_per_experiment(model) %}
    select
        experiment_id,
        count(*) as variants,
        'an experiment may have at most var experiment_max_variants = '
        || '{{ var("experiment_max_variants") }} variants (raise the var to allow more)'
            as failure_reason
    from {{ model }}
    group by experiment_id
    having count(*) > {{ var('experiment_max_variants') }}
{% endtest %}
