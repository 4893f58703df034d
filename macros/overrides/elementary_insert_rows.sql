{% macro postgres__insert_rows(table_relation, rows, should_commit=false, chunk_size=5000, on_query_exceed=none) %}
    {#- Elementary's insert_rows (0.25.1) writing the same statements, faster. Its own renders every value through
        about ten macro calls (type lookups, dispatches, timing records): at the end of a window build that was
        6 s of Jinja for a few hundred result rows. Here each column's rendering is worked out once per call and
        each value is rendered inline, with Elementary's own rules for PostgreSQL. -#}
    {%- if not rows -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not table_relation -%}
        {% do elementary.warn_missing_elementary_models() %}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(table_relation) -%}
    {%- if not columns -%}
        {{ elementary.edr_log("Could not extract columns for table - " ~ elementary.relation_to_full_name(table_relation) ~ " (might be a permissions issue)") }}
        {{ return(none) }}
    {%- endif -%}
    {%- set plan = [] -%}
    {%- for column in columns -%}
        {%- set kind = "now" if column.name.lower() == "created_at" else elementary.normalize_data_type(column.dtype) -%}
        {%- do plan.append((column.name, column.name.lower(), column.name.upper(), kind)) -%}
    {%- endfor -%}
    {%- set now = elementary.edr_current_timestamp() -%}
    {%- set timestamp_type = elementary.edr_type_timestamp() -%}
    {%- set base_insert_query -%}
       insert into {{ table_relation }}
         ({%- for column in columns -%}
           {{- elementary.escape_reserved_keywords(column.name) -}} {{- "," if not loop.last else "" -}}
         {%- endfor -%})
         {{ elementary.get_query_settings() }}
         values
    {% endset -%}
    {%- set query_max_size = elementary.get_config_var("query_max_size") -%}
    {%- set queries = [] -%}
    {%- set current = namespace(query=base_insert_query, size=0) -%}
    {%- for row in rows -%}
        {%- set row_sql = olist_dw.elementary_row_sql(row, plan, now, timestamp_type) -%}
        {%- set query_with_row = current.query ~ ("," if not loop.first else "") ~ row_sql -%}
        {%- if query_with_row | length > query_max_size or current.size >= chunk_size -%}
            {%- set new_query = base_insert_query ~ row_sql -%}
            {%- if new_query | length > query_max_size and on_query_exceed -%}
                {% do on_query_exceed(row) %}
                {%- set new_query = base_insert_query ~ olist_dw.elementary_row_sql(row, plan, now, timestamp_type) -%}
            {%- endif -%}
            {%- if new_query | length > query_max_size -%}
                {% do exceptions.warn("Row to be inserted exceeds var('query_max_size'). Consider increasing its value.") %}
            {%- endif -%}
            {%- if current.query != base_insert_query -%}
                {% do queries.append(current.query) %}
            {%- endif -%}
            {%- set current.query = new_query -%}
            {%- set current.size = 1 -%}
        {%- else -%}
            {%- set current.query = query_with_row -%}
            {%- set current.size = current.size + 1 -%}
        {%- endif -%}
        {%- if loop.last -%}
            {% do queries.append(current.query) %}
        {%- endif -%}
    {%- endfor -%}
    {%- for query in queries -%}
        {% do elementary.run_query(query) %}
    {%- endfor -%}
    {%- if should_commit -%}
        {% do adapter.commit() %}
    {%- endif -%}
{% endmacro %}


{% macro elementary_row_sql(row, plan, now, timestamp_type) -%}
    {#- One row as Elementary renders it on PostgreSQL: created_at is now, a key is looked up as written, then
        lower- and upper-case (an undefined value is a missing one), and a value by its Python type (a string
        into a timestamp column is cast). -#}
    {%- set values = [] -%}
    {%- for name, lower_name, upper_name, kind in plan -%}
        {%- if kind == "now" -%}
            {%- do values.append(now) -%}
        {%- else -%}
            {%- set value = row.get(name) -%}
            {%- if value is not defined or value is none -%}{%- set value = row.get(lower_name) -%}{%- endif -%}
            {%- if value is not defined or value is none -%}{%- set value = row.get(upper_name) -%}{%- endif -%}
            {%- if value is not defined or value is none -%}
                {%- do values.append("null") -%}
            {%- elif value is boolean -%}
                {%- do values.append(" true " if value else " false") -%}
            {%- elif value is number -%}
                {%- do values.append(value | string) -%}
            {%- elif value is string and kind == "timestamp" -%}
                {%- do values.append("cast('" ~ value | replace("'", "''") ~ "' as " ~ timestamp_type ~ ")") -%}
            {%- elif value is string -%}
                {%- do values.append("'" ~ value | replace("'", "''") ~ "'") -%}
            {%- elif value is mapping or value is sequence -%}
                {%- do values.append("'" ~ tojson(value) | replace("'", "''") ~ "'") -%}
            {%- else -%}
                {%- do values.append("null") -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return("(" ~ values | join(",") ~ ")") -}}
{%- endmacro %}
