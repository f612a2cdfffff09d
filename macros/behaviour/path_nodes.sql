{#- Sankey nodes of the path marts (event_paths, funnel_drop_off_paths; docs/behaviour.md): an
    event among its step's top var path_top_events keeps its name, any other is 'other', and a
    path that ended before the step is 'drop_off'. `first_node` names step 1's source (the
    anchor or the funnel step the attempt dropped after). -#}
{% macro path_to_node(event_column, rank_column) -%}
    case
        when {{ event_column }} is null then 'drop_off'
        when {{ rank_column }} <= {{ var('path_top_events') }} then {{ event_column }}
        else 'other'
    end
{%- endmacro %}


{% macro path_from_node(step_column, first_node, previous_event_column, previous_rank_column) -%}
    case
        when {{ step_column }} = 1 then {{ first_node }}
        when {{ previous_event_column }} is null then 'drop_off'
        when {{ previous_rank_column }} <= {{ var('path_top_events') }} then {{ previous_event_column }}
        else 'other'
    end
{%- endmacro %}
