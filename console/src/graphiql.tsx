// GraphiQL as the gateway serves it at GET /graphql in development: scripts and styles come
// from the gateway (built here), nothing from a CDN. Queries go to /graphql, subscriptions
// over graphql-ws on the same URL; headers (X-Tenant, Authorization) are kept between visits.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/style.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

const url = new URL("/graphql", window.location.href);
const ws = new URL(url);
ws.protocol = url.protocol === "https:" ? "wss:" : "ws:";
const fetcher = createGraphiQLFetcher({ url: url.toString(), subscriptionUrl: ws.toString() });
const headers = JSON.stringify({ "X-Tenant": "demo" }, null, 2);

createRoot(document.getElementById("graphiql")!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultHeaders={headers} shouldPersistHeaders isHeadersEditorEnabled />
  </StrictMode>,
);
