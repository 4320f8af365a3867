import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { createContext, type ReactNode, useContext, useState, useSyncExternalStore } from "react";
import type { Api, SignedIn } from "./api";

const ApiContext = createContext<Api | null>(null);

export function ApiProvider({ api, children }: { api: Api; children: ReactNode }) {
  return <ApiContext.Provider value={api}>{children}</ApiContext.Provider>;
}

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi outside ApiProvider");
  return api;
}

function useApiState() {
  const api = useApi();
  return useSyncExternalStore(api.subscribe, api.snapshot);
}

export function useSession(): SignedIn | null {
  return useApiState().session;
}

/** Pages render only when signed in, so they may take the session as given. */
export function useSignedIn(): SignedIn {
  const s = useSession();
  if (!s) throw new Error("useSignedIn while signed out");
  return s;
}

/** True while the app asks the server whether the cookie's session is still alive (api.restore). */
export function useRestoring(): boolean {
  return useApiState().restoring;
}

export function useReachable(): boolean {
  return useApiState().reachable;
}

/**
 * A keyset-paged list (`?limit&cursor`, answered with `next_cursor`): keeps the cursors of the
 * pages already seen so "Previous" goes back without the server needing a backwards cursor.
 */
export function usePaged<T>(
  key: string,
  path: string,
  filters: Record<string, string | undefined> = {},
  pick: (body: unknown) => { items: T[]; next_cursor: string | null } = (b) =>
    b as { items: T[]; next_cursor: string | null },
  limit = 50,
) {
  const api = useApi();
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const filterKey = JSON.stringify(filters);
  const [seenFilters, setSeenFilters] = useState(filterKey);
  if (seenFilters !== filterKey) {
    // New filters start from the first page.
    setSeenFilters(filterKey);
    setCursors([undefined]);
  }
  const cursor = cursors[cursors.length - 1];
  const query = useQuery({
    queryKey: [key, path, filters, cursor],
    queryFn: async () => pick(await api.get<unknown>(path, { ...filters, limit, cursor })),
    placeholderData: keepPreviousData,
  });
  const next = query.data?.next_cursor ?? null;
  return {
    query,
    items: query.data?.items ?? [],
    page: cursors.length,
    hasPrev: cursors.length > 1,
    hasNext: next !== null,
    next: () => next !== null && setCursors((c) => [...c, next]),
    prev: () => setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c)),
  };
}
