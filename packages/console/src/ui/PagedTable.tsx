import type { ReactNode } from "react";
import type { usePaged } from "../api-context";
import { ErrorAlert } from "./ErrorAlert";
import { Pager } from "./Pager";

type Paged<T> = ReturnType<typeof usePaged<T>>;

/**
 * A paged list the way every list page shows it: its error, a loading state, the table with one
 * row per item (`children` renders the `<tr>`), a note when there is nothing, and the pager.
 * A column given as `false` is left out (e.g. "Actions" for a role that may not change anything).
 */
export function PagedTable<T>(p: {
  list: Paged<T>;
  columns: readonly (string | false)[];
  empty?: string;
  children: (item: T) => ReactNode;
}) {
  const { list } = p;
  return (
    <>
      <ErrorAlert error={list.query.error} />
      {list.query.isPending && <p role="status">Loading…</p>}
      <table>
        <thead>
          <tr>
            {p.columns
              .filter((c): c is string => c !== false)
              .map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
          </tr>
        </thead>
        <tbody>{list.items.map(p.children)}</tbody>
      </table>
      {p.empty !== undefined && list.query.isSuccess && list.items.length === 0 && <p>{p.empty}</p>}
      <Pager {...list} />
    </>
  );
}
