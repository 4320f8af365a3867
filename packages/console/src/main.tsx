import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { App } from "./App";
import { Api, ApiError } from "./api";
import { ApiProvider } from "./api-context";
import "uplot/dist/uPlot.min.css";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    // A 4xx will not change by asking again; an unreachable server is retried by the next action.
    queries: { retry: (n, err) => !(err instanceof ApiError) && n < 1, refetchOnWindowFocus: false },
  },
});

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ApiProvider api={new Api()}>
        <QueryClientProvider client={queryClient}>
          <BrowserRouter basename="/console">
            <App />
          </BrowserRouter>
        </QueryClientProvider>
      </ApiProvider>
    </StrictMode>,
  );
}
