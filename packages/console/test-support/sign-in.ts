import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

/** Signs in through the form, as a person would, and waits for the navigation. */
export async function signIn(token: string): Promise<void> {
  await userEvent.type(screen.getByLabelText("Admin token"), token);
  await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
  await screen.findByRole("navigation", { name: "Main" });
}
