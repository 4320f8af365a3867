import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { App } from "../src/App";
import { Api } from "../src/api";
import { ApiProvider } from "../src/api-context";

/** The whole console as main.tsx mounts it, on a given path, talking to the given fetch. */
export function renderConsole(fetchImpl: (input: string, init: RequestInit) => Promise<Response>, path = "/") {
  const api = new Api(fetchImpl);
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const view = render(
    <ApiProvider api={api}>
      <QueryClientProvider client={queryClient}>
        <MemoryRouter initialEntries={[path]}>
          <App />
        </MemoryRouter>
      </QueryClientProvider>
    </ApiProvider>,
  );
  return { api, ...view };
}
