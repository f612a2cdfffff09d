{#- Every user signed up by an as-of date has exactly one row on that date, and no one else:
    with unique (user_id, as_of_date) and not-null layer columns, every layer dimension then sums
    to all users as of each date. Returns the as-of dates where the counts differ. -#}
{% test layers_cover_all_users(model, users, as_of_dates) %}
    with

    expected as (
        select
            as_of_dates.as_of_date,
            count(users.user_id) as expected_users
        from {{ as_of_dates }} as as_of_dates
        left join {{ users }} as users
            on users.signup_date <= as_of_dates.as_of_date
        group by as_of_dates.as_of_date
    ),

    actual as (
        select
            as_of_date,
            count(*) as layer_rows,
            count(distinct user_id) as layer_users
        from {{ model }}
        group by as_of_date
    )

    select
        expected.as_of_date,
        expected.expected_users,
        actual.layer_rows,
        actual.layer_users
    from expected
    full outer join actual
        on expected.as_of_date = actual.as_of_date
    where coalesce(expected.expected_users, -1) != coalesce(actual.layer_rows, 0)
        or coalesce(expected.expected_users, -1) != coalesce(actual.layer_users, 0)
{% endtest %}
