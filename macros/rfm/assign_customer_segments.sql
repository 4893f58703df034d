{% macro assign_customer_segments(dim_customer, fact_orders) -%}
    {#- Keeps dim_customer.customer_segment equal to the person's current RFM segment. The scores are ranks over
        all customers, so a window's merge cannot compute them: the merge inserts 'unscored' and never touches the
        column again (merge_exclude_columns), and this update, in the same transaction, rescores every row.
        Only rows whose segment changes are written, with a new updated_at and version like any other change; a
        row the merge already wrote in this transaction (updated_at is the transaction's time) keeps the version
        the merge gave it, so a run moves a row by one version at most. -#}
    update {{ dim_customer }} as target
    set
        customer_segment = scored.customer_segment,
        updated_at = current_timestamp,
        version = case when target.updated_at = current_timestamp then target.version else target.version + 1 end
    from (
        select
            customers.customer_id,
            coalesce(rfm.segment, 'unscored') as customer_segment
        from {{ dim_customer }} as customers
        left join ({{ customer_rfm_scores(fact_orders, dim_customer) }}) as rfm
            on customers.customer_unique_id = rfm.customer_unique_id
    ) as scored
    where
        target.customer_id = scored.customer_id
        and target.customer_segment is distinct from scored.customer_segment
{%- endmacro %}
