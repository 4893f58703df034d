"""The executive dashboard: how the business is doing, from the marts alone.

Served by ``python -m runner dashboard`` (marimo's run mode, read-only). It reads only ``mart.*`` relations and,
for freshness, the runner's ledger (``metadata``); never core, staging or raw. Every figure is computed the way
the marts' column descriptions define it (models/marts/_marts__models.yml). Filters come from the page, and
their first values from the address: ``?from=2017-02&to=2017-03&state=SP``.

Values from the database or from errors reach the page through ``dashboard.html_text`` (escaped, in markup the
page writes), never through an f-string into ``mo.Html`` nor into ``mo.md``: a state or a category made of markup
would otherwise run script in the viewer's browser.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="Olist executive dashboard")


@app.cell
def _():
    from datetime import date
    from decimal import ROUND_HALF_UP, Decimal

    import altair as alt
    import marimo as mo

    from runner import dashboard
    from runner.errors import RunnerError

    return Decimal, ROUND_HALF_UP, RunnerError, alt, dashboard, date, mo


@app.cell
def _(Decimal, RunnerError, dashboard, date, mo):
    # Every query borrows one of the few connections all pages share (read-only, as the dashboard's SELECT-only
    # role), with the settings the runner uses (OLIST_DW_DSN, else the embedded server).
    _problem = None
    try:
        threshold = dashboard.configured_stale_after()
        dashboard.query("select 1")  # unreachable: one message here rather than an error in every panel
    except RunnerError as _error:
        _problem = str(_error)
    mo.stop(
        _problem is not None,
        mo.callout(
            mo.Html(
                dashboard.html_text("<b>The dashboard cannot reach the warehouse.</b> {problem}", problem=_problem)
            ),
            kind="danger",
        ),
    )
    query = dashboard.query

    def plain(rows: list[dict]) -> list[dict]:
        """The rows as JSON values for a chart's inline data: numbers as floats, days as ISO dates."""

        def _value(value: object) -> object:
            if isinstance(value, Decimal):
                return float(value)
            return value.isoformat() if isinstance(value, date) else value

        return [{key: _value(value) for key, value in row.items()} for row in rows]

    return plain, query, threshold


@app.cell
def _(dashboard, mo, threshold):
    # Freshness: the watermark and the last successful run, from the runner's ledger.
    with dashboard.borrowed() as _connection:
        fresh = dashboard.freshness(_connection, threshold)

    def _hours(delta):
        hours = delta.total_seconds() / 3600
        if hours < 1:
            return f"{hours * 60:.0f} minutes"
        return f"{hours:,.1f} hours" if hours < 48 else f"{hours / 24:,.1f} days"

    _watermark = f"{fresh.watermark:%Y-%m-%d %H:%M}" if fresh.watermark else "not set"
    _last = f"{fresh.last_success_at:%Y-%m-%d %H:%M %Z}" if fresh.last_success_at else "never"
    _line = dashboard.html_text(
        "Data up to the watermark <b data-freshness='watermark'>{watermark}</b> (purchase time, São Paulo)"
        " &middot; last successful run <b data-freshness='last-success'>{last}</b>{ago}",
        watermark=_watermark,
        last=_last,
        ago=f" ({_hours(fresh.lag)} ago)" if fresh.lag is not None else "",
    )
    if fresh.is_stale:
        _why = (
            "no window run has succeeded yet"
            if fresh.lag is None
            else f"the last successful run is older than {_hours(fresh.stale_after)}"
        )
        _banner = mo.callout(
            mo.Html(
                dashboard.html_text("<div data-freshness='stale'><b>Stale data:</b> {why}. ", why=_why)
                + _line
                + ". Run <code>python -m runner run</code> to bring the marts up to date.</div>"
            ),
            kind="warn",
        )
    else:
        _banner = mo.Html("<div data-freshness='fresh' style='color:#555'>" + _line + ".</div>")
    mo.vstack([mo.md("# Olist executive dashboard"), _banner])
    return


@app.cell
def _(mo, query):
    # The marts this page reads (the dbt exposure executive_dashboard depends on exactly these).
    MARTS = (
        "mart_executive_kpis",
        "mart_revenue",
        "mart_delivery_performance",
        "mart_customer_analytics",
        "mart_seller_performance",
    )
    _present = {
        row["relname"]
        for row in query(
            "select class.relname from pg_class as class join pg_namespace as namespace"
            " on namespace.oid = class.relnamespace"
            " where namespace.nspname = 'mart' and class.relkind in ('m', 'r', 'v')"
        )
    }
    _missing = [name for name in MARTS if name not in _present]
    mo.stop(
        bool(_missing),
        mo.callout(
            mo.Html(
                "<div data-empty-warehouse><b>The warehouse has no marts yet</b>: "
                + ("the mart schema does not exist" if not _present else f"missing {', '.join(_missing)}")
                + ". Build them with <code>python -m runner demo</code>, or <code>python -m runner load</code>"
                " and <code>python -m runner run</code>, then reload this page.</div>"
            ),
            kind="warn",
        ),
    )
    months = [row["purchase_month"] for row in query("select purchase_month from mart.mart_executive_kpis order by 1")]
    mo.stop(
        not months,
        mo.callout(
            mo.Html(
                "<div data-empty-warehouse><b>The marts hold no orders yet.</b> Load the Olist files and run a window"
                " (<code>python -m runner load --source data/</code>, <code>python -m runner run</code>).</div>"
            ),
            kind="warn",
        ),
    )
    states = [
        row["customer_state"]
        for row in query(
            "select customer_state from mart.mart_revenue union"
            " select customer_state from mart.mart_delivery_performance order by 1"
        )
    ]
    return months, states


@app.cell
def _(mo, months, states):
    # Filters; their first values may come from the address (?from=YYYY-MM&to=YYYY-MM&state=XX).
    ALL_STATES = "All states"
    _labels = [month.strftime("%Y-%m") for month in months]
    _params = mo.query_params()

    def _pick(value, choices, default):
        return value if value in choices else default

    period_from = mo.ui.dropdown(_labels, value=_pick(_params.get("from"), _labels, _labels[-1]), label="From month")
    period_to = mo.ui.dropdown(_labels, value=_pick(_params.get("to"), _labels, _labels[-1]), label="To month")
    state = mo.ui.dropdown(
        [ALL_STATES, *states], value=_pick(_params.get("state"), states, ALL_STATES), label="Customer state"
    )
    mo.hstack([period_from, period_to, state], justify="start", gap=2)
    return ALL_STATES, period_from, period_to, state


@app.cell
def _(ALL_STATES, dashboard, date, mo, period_from, period_to, state):
    # The chosen period, whole months, and the previous period of the same length right before it.
    def _month(label):
        year, month = label.split("-")
        return date(int(year), int(month), 1)

    def _shift(day, months):
        index = day.year * 12 + day.month - 1 + months
        return date(index // 12, index % 12 + 1, 1)

    _first, _last = sorted([_month(period_from.value), _month(period_to.value)])
    length = (_last.year - _first.year) * 12 + _last.month - _first.month + 1
    period = (_first, _shift(_first, length))  # [start, end)
    previous = (_shift(_first, -length), _first)
    chosen_state = None if state.value == ALL_STATES else state.value
    where = chosen_state or "all states"

    def span(bounds):
        start, end = bounds
        last = _shift(end, -1)
        return f"{start:%b %Y}" if start == last else f"{start:%b %Y} to {last:%b %Y}"

    mo.Html(
        dashboard.html_text(
            "<p>Period <b>{period}</b> ({length} month{plural}), compared with <b>{previous}</b>; {where}.</p>",
            period=span(period),
            length=length,
            plural="s" if length > 1 else "",
            previous=span(previous),
            where=where,
        )
    )
    return chosen_state, length, period, previous, span, where


@app.cell
def _(Decimal, ROUND_HALF_UP, chosen_state, dashboard, length, mo, period, previous, query, span):
    # Headline KPIs, from mart_executive_kpis (which has no state), as its column descriptions define them.
    def _round2(value):
        """Two decimals, ties away from zero: PostgreSQL's round(), which the marts use."""
        return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def _totals(bounds, *, whole):
        rows = query(
            "select purchase_month, order_count, billable_order_count, gross_merchandise_value, mean_review_score"
            " from mart.mart_executive_kpis where purchase_month >= %s and purchase_month < %s",
            bounds,
        )
        if not rows or (whole and len(rows) < length):
            return None  # a previous period the data covers only in part is no basis for a change
        gmv = sum(row["gross_merchandise_value"] for row in rows)
        billable = sum(row["billable_order_count"] for row in rows)
        scores = [row["mean_review_score"] for row in rows if row["mean_review_score"] is not None]
        return {
            "gmv": gmv,
            "orders": sum(row["order_count"] for row in rows),
            # gross_merchandise_value per billable order, two decimals (the mart's average_order_value).
            "aov": _round2(gmv / billable) if billable else None,
            # One month: the mart's mean; several: the mean of the monthly means (the mart keeps no review counts).
            "review": _round2(sum(scores) / len(scores)) if scores else None,
        }

    def _state_gmv(bounds):
        value = query(
            "select sum(gross_merchandise_value) as gmv from mart.mart_revenue"
            " where purchase_date >= %s and purchase_date < %s and customer_state = %s",
            (*bounds, chosen_state),
        )[0]["gmv"]
        return value or Decimal(0)

    def _change(now, before, kind):
        if now is None or before is None:
            return "no full previous period in the data" if before is None else ""
        if kind == "points":
            return f"{now - before:+.2f} points vs {span(previous)}"
        if before == 0:
            return "previous period was zero"
        return f"{(now - before) / before * 100:+.1f}% vs {span(previous)}"

    def _card(key, label, value, text, change):
        shown = text if value is not None else "n/a"
        return mo.Html(
            dashboard.html_text(
                "<div data-kpi='{key}'"
                " style='border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:210px'>"
                "<div style='color:#666;font-size:0.85em'>{label}</div>"
                "<div data-kpi-value style='font-size:1.6em;font-weight:600'>{shown}</div>"
                "<div style='color:#666;font-size:0.8em'>{change}</div></div>",
                key=key,
                label=label,
                shown=shown,
                change=change,
            )
        )

    _now, _before = _totals(period, whole=False), _totals(previous, whole=True)
    _before = _before or {}
    _cards = [
        _card(
            "gmv",
            "GMV (all states)",
            _now["gmv"],
            f"R$ {_now['gmv']:,.2f}",
            _change(_now["gmv"], _before.get("gmv"), "%"),
        ),
        _card(
            "orders",
            "Orders (all states)",
            _now["orders"],
            f"{_now['orders']:,}",
            _change(_now["orders"], _before.get("orders"), "%"),
        ),
        _card(
            "aov",
            "Average order value",
            _now["aov"],
            f"R$ {_now['aov'] or 0:,.2f}",
            _change(_now["aov"], _before.get("aov"), "%"),
        ),
        _card(
            "review",
            "Mean review score",
            _now["review"],
            f"{_now['review'] or 0:.2f}",
            _change(_now["review"], _before.get("review"), "points"),
        ),
    ]
    if chosen_state:
        _gmv, _gmv_before = _state_gmv(period), _state_gmv(previous) if _before else None
        _cards.append(
            _card("state-gmv", f"GMV in {chosen_state}", _gmv, f"R$ {_gmv:,.2f}", _change(_gmv, _gmv_before, "%"))
        )
    _note = (
        "Orders count every status; GMV is the billable orders' item prices (freight excluded); the average order"
        " value is GMV per billable order."
        + (
            " Over several months the review score is the mean of the monthly means (the mart keeps no review counts)."
            if length > 1
            else ""
        )
        + (
            f" mart_executive_kpis has no state, so the first four figures are for all states; GMV in"
            f" {chosen_state} comes from mart_revenue. The marts have no exact order count per state"
            " (mart_revenue counts an order once per product category)."
            if chosen_state
            else ""
        )
    )
    mo.vstack(
        [
            mo.hstack(_cards, justify="start", gap=1, wrap=True),
            mo.Html(dashboard.html_text("<p><small>{note}</small></p>", note=_note)),
        ]
    )
    return


@app.cell
def _(alt, chosen_state, dashboard, mo, period, plain, previous, query, span):
    # Monthly GMV and orders over the previous and the chosen period.
    if chosen_state:
        _rows = query(
            "select cast(date_trunc('month', purchase_date) as date) as month, sum(gross_merchandise_value) as gmv"
            " from mart.mart_revenue where purchase_date >= %s and purchase_date < %s and customer_state = %s"
            " group by 1 order by 1",
            (previous[0], period[1], chosen_state),
        )
        _text = (
            f"GMV of {chosen_state} per month (mart_revenue). Orders per month are shown for all states only:"
            " the marts have no exact order count per state."
        )
    else:
        _rows = query(
            "select purchase_month as month, gross_merchandise_value as gmv, order_count as orders"
            " from mart.mart_executive_kpis where purchase_month >= %s and purchase_month < %s order by 1",
            (previous[0], period[1]),
        )
        _text = "GMV (bars) and orders (line) per month, all states (mart_executive_kpis)."
    _rows = plain(_rows)
    for _row in _rows:
        _row["period"] = span(period) if _row["month"] >= period[0].isoformat() else span(previous)
        _row["label"] = _row["month"][:7]
    _data = alt.Data(values=_rows)
    _base = alt.Chart(_data).encode(x=alt.X("label:O", title="month", axis=alt.Axis(labelAngle=0)))
    _bars = _base.mark_bar(opacity=0.8, size=40).encode(
        y=alt.Y("gmv:Q", title="GMV (BRL)"),
        color=alt.Color(
            "period:N",
            title="period",
            scale=alt.Scale(domain=[span(previous), span(period)], range=["#bab0ac", "#4c78a8"]),
        ),
        tooltip=["label:O", alt.Tooltip("gmv:Q", format=",.2f")],
    )
    _chart = _bars
    if not chosen_state:
        _line = _base.mark_line(point=True, color="#333").encode(
            y=alt.Y("orders:Q", title="orders"), tooltip=[alt.Tooltip("orders:Q", format=",")]
        )
        _chart = alt.layer(_bars, _line).resolve_scale(y="independent")
    mo.vstack(
        [
            mo.md("## Monthly GMV and orders"),
            mo.Html(dashboard.html_text("<p>{text}</p>", text=_text)),
            _chart.properties(width="container", height=260) if _rows else mo.md("_No sales in these months._"),
        ]
    )
    return


@app.cell
def _(alt, chosen_state, dashboard, mo, period, plain, query, where):
    # Revenue by customer state (ranked) and by product category, from mart_revenue.
    _by_state = query(
        "select customer_state, sum(gross_merchandise_value) as gmv"
        " from mart.mart_revenue where purchase_date >= %s and purchase_date < %s group by 1 order by 2 desc",
        period,
    )
    _by_category = query(
        "select product_category, sum(gross_merchandise_value) as gmv, sum(item_count) as items"
        " from mart.mart_revenue where purchase_date >= %s and purchase_date < %s"
        " and (%s::text is null or customer_state = %s) group by 1 order by 2 desc",
        (*period, chosen_state, chosen_state),
    )
    _highlight = (
        alt.condition(alt.datum.customer_state == chosen_state, alt.value("#d62728"), alt.value("#4c78a8"))
        if chosen_state
        else alt.value("#4c78a8")
    )
    _state_chart = (
        alt.Chart(alt.Data(values=plain(_by_state)))
        .mark_bar()
        .encode(
            x=alt.X("gmv:Q", title="GMV (BRL)"),
            y=alt.Y("customer_state:N", sort="-x", title="customer state"),
            color=_highlight,
            tooltip=["customer_state:N", alt.Tooltip("gmv:Q", format=",.2f")],
        )
        .properties(width="container", height=max(120, 18 * len(_by_state)))
    )
    _top = _by_category[:15]
    _category_chart = (
        alt.Chart(alt.Data(values=plain(_top)))
        .mark_bar(color="#54a24b")
        .encode(
            x=alt.X("gmv:Q", title="GMV (BRL)"),
            y=alt.Y("product_category:N", sort="-x", title="product category"),
            tooltip=["product_category:N", alt.Tooltip("gmv:Q", format=",.2f"), alt.Tooltip("items:Q", format=",")],
        )
        .properties(width="container", height=max(120, 18 * len(_top)))
    )
    mo.hstack(
        [
            mo.vstack(
                [
                    mo.md("## Revenue by state"),
                    mo.Html(
                        dashboard.html_text(
                            "<p>Where is revenue made? GMV by customer state in the period, ranked{highlight}.</p>",
                            highlight=f"; {chosen_state} highlighted" if chosen_state else "",
                        )
                    ),
                    _state_chart if _by_state else mo.md("_No sales in the period._"),
                ]
            ),
            mo.vstack(
                [
                    mo.md("## Revenue by category"),
                    mo.Html(
                        dashboard.html_text(
                            "<p>Which categories sell? GMV by product category, {where}{top}.</p>",
                            where=where,
                            top=f"; the top 15 of {len(_by_category)}" if len(_by_category) > 15 else "",
                        )
                    ),
                    _category_chart if _top else mo.md("_No sales in the period._"),
                ]
            ),
        ],
        widths="equal",
        gap=2,
    )
    return


@app.cell
def _(alt, chosen_state, dashboard, mo, period, plain, query, where):
    # Delivery punctuality and delays by customer state, from mart_delivery_performance (monthly).
    _rows = query(
        "select customer_state, sum(delivered_order_count) as delivered,"
        " sum(on_time_rate * delivered_order_count) as on_time,"
        " sum(mean_delivery_days * delivered_order_count) / sum(delivered_order_count) as mean_days,"
        " max(p90_delivery_days) as p90_days,"
        " sum(mean_days_after_estimate * delivered_order_count) / sum(delivered_order_count) as after_estimate"
        " from mart.mart_delivery_performance where purchase_month >= %s and purchase_month < %s"
        " group by 1 order by 1",
        period,
    )
    _chosen = [row for row in _rows if chosen_state in (None, row["customer_state"])]
    _delivered = sum(row["delivered"] for row in _chosen)
    _on_time = sum(row["on_time"] for row in _chosen)
    _rows = plain(_rows)
    for _row in _rows:
        _row["on_time_rate"] = _row["on_time"] / _row["delivered"]
    _color = (
        alt.condition(alt.datum.customer_state == chosen_state, alt.value("#d62728"), alt.value("#4c78a8"))
        if chosen_state
        else alt.value("#4c78a8")
    )
    _height = max(120, 18 * len(_rows))
    _rate_chart = (
        alt.Chart(alt.Data(values=_rows))
        .mark_bar()
        .encode(
            x=alt.X("on_time_rate:Q", title="on-time rate", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("customer_state:N", sort="-x", title="customer state"),
            color=_color,
            tooltip=[
                "customer_state:N",
                alt.Tooltip("on_time_rate:Q", format=".1%"),
                alt.Tooltip("delivered:Q", format=","),
            ],
        )
        .properties(width="container", height=_height)
    )
    _base = alt.Chart(alt.Data(values=_rows)).encode(y=alt.Y("customer_state:N", title="customer state"))
    _delay_chart = (
        alt.layer(
            _base.mark_rule(color="#999").encode(x=alt.X("mean_days:Q", title="days"), x2=alt.X2("p90_days")),
            _base.mark_point(filled=True, size=60).encode(x="mean_days:Q", color=_color),
            _base.mark_tick(thickness=2, color="#333").encode(x="p90_days:Q"),
            _base.mark_point(shape="diamond", size=60, color="#f58518").encode(x="after_estimate:Q"),
        )
        .encode(
            tooltip=[
                "customer_state:N",
                alt.Tooltip("mean_days:Q", format=".1f", title="mean delivery days"),
                alt.Tooltip("p90_days:Q", format=".1f", title="p90 delivery days (worst month)"),
                alt.Tooltip("after_estimate:Q", format=".1f", title="mean days after estimate"),
            ]
        )
        .properties(width="container", height=_height)
    )
    _summary = (
        dashboard.html_text(
            "On time: <b data-kpi='on-time'>{rate:.1%}</b> of {delivered:,} delivered orders, {where}.",
            rate=_on_time / _delivered,
            delivered=_delivered,
            where=where,
        )
        if _delivered
        else dashboard.html_text("No delivered orders in the period, {where}.", where=where)
    )
    mo.vstack(
        [
            mo.md("## Delivery"),
            mo.Html(
                "<p>Do we deliver on time? "
                + _summary
                + " Orders count in the month they were placed. The mart keeps, per month and state, the mean and"
                " 90th percentile of delivery days and the mean days after the estimate, not each order's delay; the"
                " right chart shows those: dot = mean delivery days, tick = 90th percentile (the highest month's in a"
                " longer period), orange diamond = mean days after the estimate (negative = early).</p>"
            ),
            mo.hstack([_rate_chart, _delay_chart], widths="equal", gap=2)
            if _rows
            else mo.md("_No delivered orders in the period._"),
        ]
    )
    return


@app.cell
def _(alt, dashboard, mo, period, plain, query, span, where):
    # Customer segments, from mart_customer_analytics: one row per person, scored over all history.
    _rows = query(
        "select segment, count(*) as customers, sum(total_spent) as spent, avg(order_count) as orders_per_customer"
        " from mart.mart_customer_analytics group by 1 order by 2 desc"
    )
    _chart = (
        alt.Chart(alt.Data(values=plain(_rows)))
        .mark_bar()
        .encode(
            x=alt.X("customers:Q", title="customers"),
            y=alt.Y("segment:N", sort="-x", title="RFM segment"),
            color=alt.Color("spent:Q", title="total spent (BRL)", scale=alt.Scale(scheme="blues")),
            tooltip=[
                "segment:N",
                alt.Tooltip("customers:Q", format=","),
                alt.Tooltip("spent:Q", format=",.2f", title="total spent (BRL)"),
                alt.Tooltip("orders_per_customer:Q", format=".2f"),
            ],
        )
        .properties(width="container", height=max(120, 28 * len(_rows)))
    )
    mo.vstack(
        [
            mo.md("## Customer segments"),
            mo.Html(
                dashboard.html_text(
                    "<p>Who are our customers? People by RFM segment, coloured by what they spent."
                    " mart_customer_analytics has no state and no period: it scores every person over all history"
                    " (recency from the newest purchase in the data), so the filters ({period}, {where}) do not"
                    " apply here.</p>",
                    period=span(period),
                    where=where,
                )
            ),
            _chart if _rows else mo.md("_No customers with a billable order yet._"),
        ]
    )
    return


@app.cell
def _(mo):
    min_items = mo.ui.slider(1, 20, value=3, label="minimum items sold", show_value=True)
    return (min_items,)


@app.cell
def _(alt, chosen_state, dashboard, min_items, mo, plain, query):
    # The sellers shipping late most often, from mart_seller_performance (lifetime figures, by seller state).
    _rows = query(
        "select seller_id, seller_state, item_count, revenue, mean_review_score, late_shipment_rate"
        " from mart.mart_seller_performance where late_shipment_rate is not null and item_count >= %s"
        " and (%s::text is null or seller_state = %s)"
        " order by late_shipment_rate desc, item_count desc, seller_id limit 10",
        (min_items.value, chosen_state, chosen_state),
    )
    _rows = plain(_rows)
    for _row in _rows:
        _row["seller"] = f"{_row['seller_id'][:8]}… ({_row['seller_state']})"
    _chart = (
        alt.Chart(alt.Data(values=_rows))
        .mark_bar(color="#e45756")
        .encode(
            x=alt.X("late_shipment_rate:Q", title="late-shipment rate", axis=alt.Axis(format="%")),
            y=alt.Y("seller:N", sort="-x", title="seller"),
            tooltip=[
                "seller_id:N",
                "seller_state:N",
                alt.Tooltip("late_shipment_rate:Q", format=".1%"),
                alt.Tooltip("item_count:Q", format=","),
                alt.Tooltip("revenue:Q", format=",.2f"),
                alt.Tooltip("mean_review_score:Q", format=".2f"),
            ],
        )
        .properties(width="container", height=max(120, 24 * len(_rows)))
    )
    mo.vstack(
        [
            mo.md("## Sellers shipping late"),
            mo.Html(
                dashboard.html_text(
                    "<p>Which sellers hand items to the carrier after the shipping limit? The ten worst late-shipment"
                    " rates among sellers with at least the chosen number of items sold.{state} mart_seller_performance"
                    " has no period: these are lifetime figures, whatever the period.</p>",
                    state=f" The state filter selects the seller's state ({chosen_state})." if chosen_state else "",
                )
            ),
            min_items,
            _chart if _rows else mo.md("_No seller with that many items shipped._"),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
