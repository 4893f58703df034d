{% macro assign_customer_segments(dim_customer, fact_orders) -%}
    {#- Keeps dim_customer.customer_segment equal to the person's current RFM segment. The scores are ranks over
        all customers, so a window's merge cannot compute them: the merge inserts 'unscored' and never touches the
        column again (merge_exclude_columns), and this update, in the same transaction, rescores every row.
        Only rows whose segment changes are written, with a new updated_at and version like any other change; a
        row the merge already wrote in this transaction (updated_at is the transaction's time) keeps the version
        the merge gave it, so a run moves a row by one version at most. -#}
    {{ return(adapter.dispatch('assign_customer_segments', 'olist_dw')(dim_customer, fact_orders)) }}
{%- endmacro %}


{% macro default__assign_customer_segments(dim_customer, fact_orders) -%}
    update {{ dim_customer }} as target
    set
        customer_segment = scored.customer_segment,
        updated_at = current_timestamp,
        version = case when target.updated_at = current_timestamp then target.version else target.version + 1 end
    from ({{ current_customer_segments(dim_customer, fact_orders) }}) as scored
    where
        target.customer_id = scored.customer_id
        and target.customer_segment is distinct from scored.customer_segment
{%- endmacro %}


{% macro spark__assign_customer_segments(dim_customer, fact_orders) -%}
    {#- One MERGE (Delta has no UPDATE ... FROM). Each statement has its own current_timestamp here, so the rows the
        merge wrote in this run are those updated since the run started. -#}
    merge into {{ dim_customer }} as target
    using ({{ current_customer_segments(dim_customer, fact_orders) }}) as scored
        on target.customer_id = scored.customer_id
    when matched and not (target.customer_segment <=> scored.customer_segment) then update set
        customer_segment = scored.customer_segment,
        updated_at = current_timestamp(),
        version = case
            when target.updated_at >= cast('{{ run_started_at.isoformat() }}' as timestamp) then target.version
            else target.version + 1
        end
{%- endmacro %}
