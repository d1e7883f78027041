import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { SignUp } from "../../gql/documents";
import { fakeGateway, TOKENS } from "../../test/fetch";

afterEach(() => vi.unstubAllGlobals());

async function fill(values: Record<string, string>) {
  const user = userEvent.setup();
  for (const [label, value] of Object.entries(values)) {
    await user.type(screen.getByLabelText(label), value);
  }
  await user.click(screen.getByRole("button", { name: /Sign up and sign in/ }));
  return user;
}

describe("agency sign-up form", () => {
  it("checks the fields before sending anything", async () => {
    const sent = fakeGateway(() => ({ body: {} }));
    render(<App initialPath="/sign-up" locale="en" />);
    await fill({ "Company code": "9-Bad--Code", Password: "short" });
    expect(await screen.findByText("Company name is required")).toBeInTheDocument();
    expect(screen.getByText("Your name is required")).toBeInTheDocument();
    expect(screen.getByText("Not a valid company code")).toBeInTheDocument();
    expect(screen.getByText("Give a phone number or an email")).toBeInTheDocument();
    expect(screen.getByText("Password needs at least 8 characters")).toBeInTheDocument();
    expect(sent).toHaveLength(0);
  });

  it("shows the gateway's typed error on the field it names", async () => {
    const sent = fakeGateway(() => ({
      body: {
        data: {
          signUp: { __typename: "ConflictError", code: "CONFLICT", message: "slug 'acme' is taken", field: "slug" },
        },
      },
    }));
    render(<App initialPath="/sign-up" locale="en" />);
    await fill({
      "Company name": "Acme Homes",
      "Company code": "acme",
      "Your name": "Li Wei",
      Phone: "13812345678",
      Password: "long enough pw",
    });
    expect(await screen.findByText("slug 'acme' is taken")).toBeInTheDocument();
    expect(sent).toHaveLength(1);
    expect(sent[0].documentId).toBe(SignUp.id);
    expect(sent[0].documentId).toMatch(/^[0-9a-f]{64}$/);
    expect(sent[0].variables.input).toMatchObject({
      tenantSlug: "acme",
      tenantName: "Acme Homes",
      phone: "13812345678",
      email: null,
      locale: "en",
    });
    expect(sent[0].headers["x-tenant"]).toBeUndefined();
  });

  it("shows an error that names no field above the form, and a network failure", async () => {
    let reply: { body: unknown } | Error = {
      body: { data: { signUp: { __typename: "ValidationError", code: "BAD_USER_INPUT", message: "time zone unknown", field: null } } },
    };
    fakeGateway(() => reply);
    render(<App initialPath="/sign-up" locale="en" />);
    const user = await fill({
      "Company name": "Acme Homes",
      "Company code": "acme-homes",
      "Your name": "Li Wei",
      Email: "li@example.com",
      Password: "long enough pw",
    });
    expect((await screen.findByRole("alert")).textContent).toContain("time zone unknown");
    reply = new TypeError("Failed to fetch");
    await user.click(screen.getByRole("button", { name: /Sign up and sign in/ }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("Cannot reach the server"));
  });

  it("signs in to the new tenant and opens the console home", async () => {
    fakeGateway((call) =>
      call.operationName === "SignUp"
        ? {
            body: {
              data: {
                signUp: {
                  __typename: "SignUpPayload",
                  tenant: { id: "t1", slug: "acme-homes", name: "Acme Homes" },
                  account: { id: "a1", name: "Li Wei" },
                  tokens: TOKENS,
                },
              },
            },
          }
        : {
            body: {
              data: {
                me: {
                  account: { id: "a1", name: "Li Wei", phone: null, email: "li@example.com" },
                  tenant: { id: "t1", slug: "acme-homes", name: "Acme Homes", plan: "trial", status: "active" },
                  roles: ["admin"],
                  permissions: [],
                  totpEnabled: false,
                  totpEnrollmentRequired: false,
                },
              },
            },
          },
    );
    render(<App initialPath="/sign-up" locale="en" />);
    await fill({
      "Company name": "Acme Homes",
      "Company code": "acme-homes",
      "Your name": "Li Wei",
      Email: "li@example.com",
      Password: "long enough pw",
    });
    expect(await screen.findByText("Welcome, Li Wei")).toBeInTheDocument();
    expect(JSON.parse(localStorage.getItem("anju.session.acme-homes")!).accessToken).toBe("access-1");
  });
});
